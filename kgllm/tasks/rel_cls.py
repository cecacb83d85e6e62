"""Relation classification with entity markers: ``[E1] head [/E1] ... [E2] tail [/E2]`` inserted
around the example's head and tail wordpieces, the label read from the two start markers' states
(:class:`EntityMarkerHead` on ``BertModel``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgllm.nn.backbone import load_hf_model
from kgllm.tasks.base import Task, insert_tokens

MARKERS = ("[E1]", "[/E1]", "[E2]", "[/E2]")


def add_markers(tokenizer) -> int:
    """Register the entity marker tokens as special tokens; returns how many were new."""
    return tokenizer.add_special_tokens({"extra_special_tokens": list(MARKERS)},
                                        replace_extra_special_tokens=False)


class EntityMarkerHead(nn.Module):
    """Relation classifier over the states of the ``[E1]`` and ``[E2]`` start markers.

    Shapes:
        - **input:** hidden :math:`(B, T, H)`, head_pos :math:`(B,)`, tail_pos :math:`(B,)`
        - **output:** logits :math:`(B, C)`
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden_size, num_labels)

    def forward(self, hidden: Tensor, head_pos: Tensor, tail_pos: Tensor) -> Tensor:
        rows = torch.arange(hidden.size(0), device=hidden.device)
        pair = torch.cat([hidden[rows, head_pos], hidden[rows, tail_pos]], dim=-1)  # (B, 2H)
        return self.classifier(self.dropout(pair))


class RelationClassification(Task):
    """Relation classification between two marked spans (``[E1]``/``[E2]``); the head reads the markers' states."""

    name = "rel_cls"
    head_reads = "markers"
    reserved = len(MARKERS)

    def prepare_tokenizer(self, tokenizer) -> None:
        add_markers(tokenizer)

    def setup(self, tokenizer) -> "RelationClassification":
        self.marker_ids = tokenizer.convert_tokens_to_ids(list(MARKERS))
        if tokenizer.unk_token_id in self.marker_ids:
            raise ValueError("tokenizer lacks the entity marker tokens; add them with add_markers()")
        return self

    def finish(self, feat: dict, example, mentions) -> dict | None:
        """Insert the markers around the head and tail wordpieces; ``None`` when either was cut off."""
        idx = {(m.start, m.end): j for j, m in enumerate(mentions)}
        jh, jt = idx.get(tuple(example.head)), idx.get(tuple(example.tail))
        pos_h = [i for i, j in enumerate(feat["span"]) if j == jh]
        pos_t = [i for i, j in enumerate(feat["span"]) if j == jt]
        if not pos_h or not pos_t:
            return None
        marks = [(pos_h[0], True, self.marker_ids[0]), (pos_h[-1] + 1, False, self.marker_ids[1]),
                 (pos_t[0], True, self.marker_ids[2]), (pos_t[-1] + 1, False, self.marker_ids[3])]
        out, where = insert_tokens(feat, marks)
        return {**out, "head_pos": where[0], "tail_pos": where[2]}

    def collate(self, batch: dict, feats: list[dict]) -> None:
        super().collate(batch, feats)
        batch["head_pos"] = torch.tensor([f["head_pos"] for f in feats], dtype=torch.long)
        batch["tail_pos"] = torch.tensor([f["tail_pos"] for f in feats], dtype=torch.long)

    def build_hf(self, backbone, num_labels, dropout, hf_kwargs):
        from transformers import BertModel

        return load_hf_model(BertModel, backbone, add_pooling_layer=False, **hf_kwargs)

    def build_head(self, hidden_size, num_labels, dropout):
        return EntityMarkerHead(hidden_size, num_labels, dropout)

    def logits(self, model, head, inputs, batch):
        hidden = model.encode(**inputs)  # (B, T, H)
        return head(hidden, batch["head_pos"], batch["tail_pos"])
