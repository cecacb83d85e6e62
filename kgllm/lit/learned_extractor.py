"""``build-kg --extractor learned --re-model CKPT``: typed edges from a trained document-level
relation extraction model (:class:`~kgllm.lit.DocREModule`, ``kgllm fit --config
experiments/docre_redocred.yaml``).

It keeps the extractor contract (:mod:`kgllm.kg.extraction.extractors`): the input is spaCy's mentions and
kgllm's entity clusters (resolved pronouns are not mentions for the model), the model scores every
ordered pair of clusters of the document in one forward pass, and each relation whose logit beats
the pair's threshold becomes an edge keyed by the model's relation id (Wikidata property ids for
Re-DocRED) with confidence ``sigmoid(logit - threshold logit)``. The evidence is the first sentence
holding both entities, else the span from the first head mention to the first tail mention (the
edge's sentence is then the head's).

The file lives in ``kgllm.lit`` because it needs the model; the KG builder reaches it only through
the extractor registry's module path, so ``build-kg`` with other extractors never imports torch.
A fused model links the document's mentions to the KG it was trained with (its ``kg_dir``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import torch

from kgllm.util.errors import ConfigError, KGLLMError
from kgllm.util.io import sha256_file
from kgllm.kg.extraction.extractors import Extractor, MentionedDoc, TripleRow


def relation_labels(ids: list[str]) -> dict[str, str]:
    """Readable names of Wikidata property ids, from the labels shipped with kgllm
    (:mod:`kgllm.kg.graph.wikidata`; an id without a label keeps the id). Needs no dataset folder:
    an extractor runs on any corpus without ``$KGLLM_DATA``."""
    from kgllm.kg.graph.wikidata import relation_label

    return {r: relation_label(r) or r for r in ids}


@lru_cache(maxsize=2)
def _loaded(path: str, stamp: tuple) -> tuple:
    """The model and what extraction needs, loaded once per checkpoint file version."""
    from torch_geometric.data import Data

    from kgllm.data.subgraph import SubgraphSampler
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.kg.graph.to_pyg import to_pyg
    from kgllm.linking import EntityLinker
    from kgllm.lit.classify import DocREModule
    from kgllm.lit.quiet import quiet_third_party
    from kgllm.nn.backbone import load_tokenizer

    quiet_third_party()  # no weight-loading bar in a build's output
    model, _ = DocREModule.from_checkpoint(path)
    tokenizer = load_tokenizer(model.hparams.backbone)
    if model.hparams.fusion != "none":
        kg = KnowledgeGraph.load(model.hparams.kg_dir)
        linker, graph = EntityLinker.from_kg(kg), to_pyg(kg)
    else:
        linker = EntityLinker([], [], [], [])
        graph = Data(edge_index=torch.zeros(2, 0, dtype=torch.long), edge_type=torch.zeros(0, dtype=torch.long),
                     num_nodes=0)
    return model, tokenizer, linker, SubgraphSampler(graph), sha256_file(path)


class LearnedExtractor(Extractor):
    """Edges from a document-level relation extraction checkpoint (``cfg.re_model``)."""

    name = "learned"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        from kgllm.lit.extractor_file import SHIPPED
        from kgllm.nn.checkpoints import local_checkpoint

        re_model = cfg.re_model or (str(SHIPPED) if SHIPPED.is_file() else None)
        if not re_model:
            raise ConfigError("--extractor learned needs --re-model CKPT (a DocREModule checkpoint from "
                              "`kgllm fit --config experiments/docre_redocred.yaml`, or an extractor file from "
                              f"`kgllm prepare-extractor`); this install has no shipped {SHIPPED.name}")
        path = Path(local_checkpoint(re_model))  # a URL is downloaded (named by its content)
        if not path.is_file():
            raise ConfigError(f"{path}: --re-model checkpoint not found")
        st = path.stat()
        try:
            self.model, self.tokenizer, self.linker, self.sampler, sha = _loaded(str(path.resolve()),
                                                                                (st.st_size, st.st_mtime_ns))
        except KGLLMError as exc:  # name the checkpoint as the user gave it (a URL, not its downloaded copy)
            raise type(exc)(str(exc).replace(str(path.resolve()), str(re_model))) from None
        self.relations = list(self.model.label_names or [])
        if len(self.relations) != self.model.hparams.num_labels:
            raise ConfigError(f"{path}: the checkpoint does not record its relation schema (label names); "
                              "retrain it with this kgllm version")
        self.version = f"learned-docre:{sha[:16]}"
        self.sha256 = sha
        self.margin = float(getattr(cfg, "re_margin", 0.0))
        from kgllm.data.collate import KGCollator
        from kgllm.data.features import Featurizer
        from kgllm.tasks.docre import DocRelationExtraction

        task = DocRelationExtraction(num_labels=len(self.relations))  # the data side; the model has its own
        self.featurize = Featurizer(self.tokenizer, self.linker, task, 512)
        self.collate = KGCollator(self.tokenizer, self.sampler, task)

    def meta(self) -> dict:
        return {"model": {"sha256": self.sha256, "relations": self.relations, "fusion": self.model.hparams.fusion,
                          "backbone": self.model.hparams.backbone},
                "relation_labels": relation_labels(self.relations)}

    def extract(self, mdoc: MentionedDoc) -> list[TripleRow]:
        """Typed edges of one document (:meth:`extract_batch` of one)."""
        return self.extract_batch([mdoc])[0]

    @torch.no_grad()
    def extract_batch(self, mdocs: list[MentionedDoc]) -> list[list[TripleRow]]:
        """Typed edges of each document; documents are scored ``re_batch_size`` at a time in one
        forward pass, grouped by length (padding masked). The scores match one document at a time
        up to float rounding (``experiments/bench/bench_re_batch.py`` reports the largest
        difference), so only a pair scored within rounding of its threshold can differ."""
        from kgllm.nn.docre import predict_relations

        out: list[list[TripleRow]] = [[] for _ in mdocs]
        for i, clusters, owners, pairs, logits in self.score_batch(mdocs):
            keep = predict_relations(logits, self.model.task_spec.top_k, self.margin)
            for p, r in keep.nonzero().tolist():
                h, t = pairs[p].tolist()
                sentence, start, end = self._evidence(mdocs[i], clusters[owners[h]], clusters[owners[t]])
                confidence = 1 / (1 + math.exp(-float(logits[p, r + 1] - logits[p, 0])))
                out[i].append(TripleRow(owners[h], self.relations[r], owners[t], sentence, start, end,
                                        round(min(max(confidence, 1e-6), 1.0), 6)))
        return out

    @torch.no_grad()
    def score_batch(self, mdocs: list[MentionedDoc]) -> list[tuple]:
        """``(document index, clusters, owners, pairs, logits)`` of each document with two or more
        entities: the model's scores of every ordered entity pair, :math:`(P, R + 1)`, computed
        ``re_batch_size`` documents per forward pass (sorted by length)."""
        from kgllm.data.datasets import TextExample

        todo = []  # (document index, clusters, owners, feature)
        for i, mdoc in enumerate(mdocs):
            clusters: dict[int, list[int]] = {}
            for m in mdoc.order:
                if mdoc.spans[m].label_ != "PRON":
                    clusters.setdefault(mdoc.owner[m], []).append(m)
            if len(clusters) < 2:
                continue
            owners = list(clusters)
            spans = [[(mdoc.spans[m].start_char, mdoc.spans[m].end_char) for m in clusters[c]] for c in owners]
            known = sorted({(mdoc.spans[m].start_char, mdoc.spans[m].end_char, mdoc.spans[m].label_)
                            for c in owners for m in clusters[c]})
            (feat,) = self.featurize(TextExample(mdoc.doc.text, spans=known, entities=spans), [])
            todo.append((i, clusters, owners, feat))
        todo.sort(key=lambda item: len(item[3]["input_ids"]))  # similar lengths share a pass: little padding
        model, size = self.model, max(1, int(getattr(self.cfg, "re_batch_size", 1) or 1))
        scored = []
        for start in range(0, len(todo), size):
            group = todo[start:start + size]
            batch = self.collate([feat for _, _, _, feat in group])
            logits = model.task_spec.logits(model.model, model.head, model.fused_inputs(batch), batch)
            offset = 0
            for b, (i, clusters, owners, _) in enumerate(group):
                pairs = batch["pairs"][b]
                scored.append((i, clusters, owners, pairs, logits[offset:offset + len(pairs)]))
                offset += len(pairs)
        return sorted(scored, key=lambda item: item[0])

    @staticmethod
    def _evidence(mdoc: MentionedDoc, heads: list[int], tails: list[int]) -> tuple[int, int, int]:
        sentence = {m: mdoc.sent_of[mdoc.spans[m].start] for m in heads + tails}
        together = [(sentence[a], a, b) for a in heads for b in tails if sentence[a] == sentence[b]]
        s, a, b = min(together) if together else (sentence[heads[0]], heads[0], tails[0])
        return (s, *mdoc.span_of(a, b))
