"""Document-level relation extraction (:mod:`kgllm.nn.docre`: ATLOP's entity pooling, localised
context pooling, grouped bilinear classifier and adaptive-threshold loss).

Data: a whole document (never truncated: the model encodes long ones in overlapping windows)
with its entities, each a list of mention character spans (``TextExample.entities``), and gold
``(head, tail, relation, in_train)`` triples. Every mention is wrapped in ``*`` markers (a token
BERT's vocabulary already has); the batch holds each entity's start-marker positions and, per
document, every ordered pair of distinct entities with a label row: class 0 is the threshold,
column ``r + 1`` is 1 for a gold relation ``r`` (2 when the fact is also annotated in training,
which Ign F1 leaves out).

Model options (``ClassifierModule(task="docre", task_args={...})``): ``emb_size``, ``block_size``,
``window`` and ``overlap`` (encoder windows, in wordpieces), ``top_k`` (at most that many
relations predicted per pair; ``None``: all above the threshold).

Metrics: ``f1``, ``ign_f1``, ``precision``, ``recall`` over the (head, tail, relation) triples of
the evaluated documents (micro), given gold entities.
"""

from __future__ import annotations

from itertools import permutations

import torch
from torchmetrics import Metric, MetricCollection

from kgllm.nn.backbone import load_hf_model
from kgllm.nn.docre import DocREHead, adaptive_threshold_loss, encode_windows, predict_relations
from kgllm.tasks.base import Task, insert_tokens

MARKER = "*"


def triple_counts(pred: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Correct, predicted and gold (head, tail, relation) triples of pair rows: ``pred`` the
    boolean :math:`(P, R)` predictions, ``labels`` the task's :math:`(P, R + 1)` label rows."""
    gold = labels[:, 1:] > 0
    return (pred & gold).sum(), pred.sum(), gold.sum()


class DocREScore(Metric):
    """Micro precision, recall, F1 or Ign F1 of predicted (head, tail, relation) triples.

    ``update(logits, labels)`` with the task's label rows (> 0 gold, 2 gold and in training). Ign F1
    (DocRED's): correct predictions of facts annotated in training are taken out of both the correct
    count and the number of predictions; recall stays the plain one.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, kind: str = "f1", top_k: int | None = None, margin: float = 0.0) -> None:
        super().__init__()
        if kind not in ("f1", "ign_f1", "precision", "recall"):
            raise ValueError(f"unknown DocRE score {kind!r}")
        self.kind, self.top_k, self.margin = kind, top_k, margin
        for name in ("correct", "correct_in_train", "predicted", "gold"):
            self.add_state(name, torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        pred = predict_relations(logits, self.top_k, self.margin)
        correct, predicted, gold = triple_counts(pred, labels)
        self.correct += correct
        self.correct_in_train += (pred & (labels[:, 1:] == 2)).sum()
        self.predicted += predicted
        self.gold += gold

    def compute(self) -> torch.Tensor:
        correct, predicted = self.correct.float(), self.predicted.float()
        if self.kind == "ign_f1":
            correct, predicted = correct - self.correct_in_train, predicted - self.correct_in_train
        p = correct / predicted if predicted > 0 else correct.new_tensor(0.0)
        r = self.correct.float() / self.gold if self.gold > 0 else correct.new_tensor(0.0)
        if self.kind == "precision":
            return p
        if self.kind == "recall":
            return r
        return 2 * p * r / (p + r) if p + r > 0 else p.new_tensor(0.0)


class DocRelationExtraction(Task):
    """Args: see the module docstring."""

    name = "docre"
    head_reads = "markers"
    truncation = False

    def __init__(self, emb_size: int = 384, block_size: int = 64, window: int = 512, overlap: int = 128,
                 top_k: int | None = None, num_labels: int = 0) -> None:
        self.num_labels = num_labels  # the data side's label rows (the model side reads its own num_labels)
        self.emb_size, self.block_size = emb_size, block_size
        self.window, self.overlap, self.top_k = window, overlap, top_k

    def setup(self, tokenizer) -> "DocRelationExtraction":
        self.marker_id = tokenizer.convert_tokens_to_ids(MARKER)
        if self.marker_id == tokenizer.unk_token_id:
            raise ValueError(f"tokenizer has no {MARKER!r} token for the mention markers")
        return self

    def finish(self, feat: dict, example, mentions) -> dict:
        """Markers around every entity mention; ``entity_pos`` holds each entity's start-marker
        positions (a mention the tokenizer lost falls back to ``[CLS]``, position 0)."""
        index = {(m.start, m.end): j for j, m in enumerate(mentions)}
        pieces: dict[int, list[int]] = {}
        for i, j in enumerate(feat["span"]):
            if j >= 0:
                pieces.setdefault(j, []).append(i)
        inserts, owner = [], []
        for e, spans in enumerate(example.entities):
            for span in spans:
                at = pieces.get(index.get(tuple(span), -1))
                if at:
                    inserts += [(at[0], True, self.marker_id), (at[-1] + 1, False, self.marker_id)]
                    owner.append(e)
        out, where = insert_tokens(feat, inserts)
        entity_pos: list[list[int]] = [[] for _ in example.entities]
        for k, e in enumerate(owner):
            entity_pos[e].append(where[2 * k])
        out["entity_pos"] = [sorted(set(p)) or [0] for p in entity_pos]
        out["triples"] = [tuple(t) for t in example.triples]
        return out

    def collate(self, batch: dict, feats: list[dict]) -> None:
        """``entity_pos`` (per document), ``pairs`` (per document, :math:`(P_b, 2)`) and ``labels``
        :math:`(\\sum_b P_b, R + 1)`. DDP evaluation padding gets no pairs (scored by nothing)."""
        num_classes = self.num_labels + 1
        pairs, labels = [], []
        for f in feats:
            n = 0 if f.get("padding") else len(f["entity_pos"])
            p = torch.tensor(list(permutations(range(n), 2)), dtype=torch.long).view(-1, 2)
            row = {(int(h), int(t)): i for i, (h, t) in enumerate(p.tolist())}
            lab = torch.zeros(len(p), num_classes, dtype=torch.long)
            for h, t, r, in_train in (f["triples"] if n else ()):
                lab[row[(h, t)], r + 1] = 2 if in_train else 1
            pairs.append(p)
            labels.append(lab)
        batch["entity_pos"] = [f["entity_pos"] for f in feats]
        batch["pairs"] = pairs
        batch["labels"] = torch.cat(labels)

    def ignore(self, batch, padding):
        """Padding documents already have no pairs (:meth:`collate`)."""

    @classmethod
    def for_data(cls, hparams, label_names):
        return cls(num_labels=len(label_names))

    # -- model side ----------------------------------------------------------
    def build_hf(self, backbone, num_labels, dropout, hf_kwargs):
        from transformers import BertModel

        # eager attention: the pair context pools the last layer's attention probabilities
        return load_hf_model(BertModel, backbone, add_pooling_layer=False, attn_implementation="eager",
                             **hf_kwargs)

    def build_head(self, hidden_size, num_labels, dropout):
        return DocREHead(hidden_size, num_labels + 1, self.emb_size, self.block_size)

    def logits(self, model, head, inputs, batch):
        def encode(ids, mask, nodes, graph):
            out = model(input_ids=ids, attention_mask=mask, graph=graph, token_node=nodes, output_attentions=True)
            return out.last_hidden_state, out.attentions[-1]

        hidden, attention = encode_windows(encode, inputs["input_ids"], inputs["attention_mask"],
                                           inputs.get("token_node"), inputs.get("graph"), self.window, self.overlap)
        return head(hidden, attention, batch["entity_pos"], batch["pairs"])

    def loss(self, logits, batch):
        labels = batch["labels"]
        return adaptive_threshold_loss(logits, labels), logits, labels

    def item_counts(self, logits, labels, batch):
        """Which documents of the batch are scored (:math:`(B,)`, False for one without pairs, as DDP
        padding is) and each one's correct, predicted and gold triples (:math:`(B, 3)`, as
        :class:`DocREScore` counts them): what ``test_items.csv`` holds, for a bootstrap of micro F1
        over test documents."""
        sizes = [len(p) for p in batch["pairs"]]
        pred = predict_relations(logits, self.top_k).split(sizes)
        counts = [torch.stack(triple_counts(p, lab)) for p, lab in zip(pred, labels.split(sizes))]
        return torch.tensor([n > 0 for n in sizes], device=labels.device), torch.stack(counts)

    def metrics(self, num_labels):
        return MetricCollection({kind: DocREScore(kind, self.top_k) for kind in ("f1", "ign_f1", "precision", "recall")})
