"""TextExample -> model features: wordpieces, entity markers, per-token KG links.

Mentions come from spaCy NER (cached on disk per text set) plus any spans the
dataset already knows (e.g. the head and tail of a relation example, which win
over overlapping NER spans). Each mention is linked to a KG node
(:class:`~kgllm.linking.EntityLinker`) and mapped to wordpieces through the
tokenizer's offset mapping (:func:`~kgllm.linking.align_spans`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Sequence

from kgllm.data.datasets import TextExample
from kgllm.io import atomic_write_text, stable_hash
from kgllm.linking import EntityLinker, align_spans
from kgllm.paths import cache_dir

log = logging.getLogger(__name__)

MARKERS = ("[E1]", "[/E1]", "[E2]", "[/E2]")


def detect_mentions(texts: Sequence[str], spacy_model: str | None = None, batch_size: int = 64,
                    use_cache: bool = True, progress: bool = True) -> list[list[tuple[int, int, str]]]:
    """spaCy NER spans ``(start, end, label)`` per text, cached under ``$KGLLM_CACHE``."""
    from tqdm.auto import tqdm

    from kgllm.config import DEFAULT_EXCLUDED_LABELS
    from kgllm.kg.extract import load_pipeline, pipeline_info

    nlp = load_pipeline(spacy_model, disable=("parser", "lemmatizer", "tagger", "attribute_ruler"))
    digest = hashlib.sha256()
    for t in texts:
        digest.update(t.encode("utf-8") + b"\0")
    path = cache_dir() / f"mentions-{stable_hash([pipeline_info(nlp), digest.hexdigest()])}.json"
    if use_cache and path.is_file():
        return [[tuple(s) for s in spans] for spans in json.loads(path.read_text(encoding="utf-8"))]
    out = []
    docs = nlp.pipe(texts, batch_size=batch_size)
    for doc in tqdm(docs, total=len(texts), desc="NER", unit="text", disable=not progress):
        out.append([(e.start_char, e.end_char, e.label_) for e in doc.ents
                    if e.label_ not in DEFAULT_EXCLUDED_LABELS])
    if use_cache:
        atomic_write_text(path, json.dumps(out))
    return out


def merge_spans(known: Sequence[tuple[int, int, str]], found: Sequence[tuple[int, int, str]]) -> list:
    """Known spans plus found spans that overlap none of them, sorted by start."""
    keep = list(known) + [f for f in found if all(f[1] <= k[0] or k[1] <= f[0] for k in known)]
    return sorted(keep)


@dataclass
class FeatureStats:
    examples: int = 0
    truncated: int = 0
    dropped: int = 0
    linked_mentions: int = 0
    mentions: int = 0

    def summary(self) -> str:
        rate = self.linked_mentions / max(self.mentions, 1)
        return (f"{self.examples} examples, {self.truncated} truncated, {self.dropped} dropped "
                f"(entity cut off by max_length), {self.linked_mentions}/{self.mentions} mentions linked "
                f"({rate:.0%})")


class Featurizer:
    """Turns examples into feature dicts (plain lists) for the collator.

    Args:
        tokenizer: a fast HF tokenizer (offset mapping); for ``rel_cls`` it must know :data:`MARKERS`.
        linker: entity linker of the KG.
        task: ``mlm``, ``seq_cls`` or ``rel_cls``.
        max_length: wordpieces per example, special tokens and markers included. MLM texts
            longer than that are cut into consecutive windows; other texts are truncated.
    """

    def __init__(self, tokenizer, linker: EntityLinker, task: str, max_length: int = 128) -> None:
        self.tok = tokenizer
        self.linker = linker
        self.task = task
        self.max_length = max_length
        self.stats = FeatureStats()
        if task == "rel_cls":
            self.marker_ids = tokenizer.convert_tokens_to_ids(list(MARKERS))
            if tokenizer.unk_token_id in self.marker_ids:
                raise ValueError("tokenizer lacks the entity marker tokens; add them with add_markers()")

    def __call__(self, ex: TextExample, found: Sequence[tuple[int, int, str]]) -> list[dict]:
        from kgllm.linking import Mention

        keyed = [(s, e, "LINK") for s, e, _ in ex.links]
        spans = merge_spans(list(ex.spans) + keyed, found)
        by_key = {(s, e): self.linker.key_to_id.get(k, -1) for s, e, k in ex.links}
        typed = [sp for sp in spans if (sp[0], sp[1]) not in by_key]
        mentions = sorted(self.linker.link(ex.text, typed) +
                          [Mention(s, e, "LINK", by_key[(s, e)]) for s, e, _ in keyed], key=lambda m: m.start)
        self.stats.mentions += len(mentions)
        self.stats.linked_mentions += sum(m.node >= 0 for m in mentions)
        budget = self.max_length - (4 if self.task == "rel_cls" else 0)
        enc = self.tok(ex.text, return_offsets_mapping=True, truncation=True, max_length=budget,
                       return_overflowing_tokens=self.task == "mlm", stride=0)
        windows = range(len(enc["input_ids"])) if self.task == "mlm" else [None]
        feats = []
        for w in windows:
            ids = enc["input_ids"] if w is None else enc["input_ids"][w]
            offsets = enc["offset_mapping"] if w is None else enc["offset_mapping"][w]
            words = enc.word_ids(0 if w is None else w)
            span_of = align_spans(offsets, [(m.start, m.end) for m in mentions])
            feat = {"input_ids": list(ids), "span": span_of,
                    "token_node": [mentions[j].node if j >= 0 else -1 for j in span_of],
                    "word": [-1 if x is None else x for x in words], "label": ex.label}
            if self.task == "token_cls":
                gold = {(a, b): lab for a, b, lab in ex.spans}
                feat["label"] = self._bio(span_of, words, [gold.get((m.start, m.end)) for m in mentions])
            if self.task == "rel_cls":
                feat = self._add_markers(feat, ex, mentions)
                if feat is None:
                    self.stats.dropped += 1
                    continue
            feats.append(feat)
        if self.task != "mlm" and len(self.tok(ex.text)["input_ids"]) > budget:
            self.stats.truncated += 1
        self.stats.examples += len(feats)
        return feats

    @staticmethod
    def _bio(span_of: list[int], words: list, gold_types: list[str | None]) -> list[int]:
        """BIO tag ids per wordpiece from the gold type of each mention (``None``: not gold);
        -100 on special tokens."""
        from kgllm.data.datasets import NER_LABELS

        index = {name: i for i, name in enumerate(NER_LABELS)}
        out, previous = [], -1
        for j, w in zip(span_of, words):
            if w is None:
                out.append(-100)
            elif j < 0 or gold_types[j] is None:
                out.append(0)
            else:
                out.append(index[("I-" if j == previous else "B-") + gold_types[j]])
            previous = j
        return out

    def _add_markers(self, feat: dict, ex: TextExample, mentions) -> dict | None:
        """Insert ``[E1] .. [/E1]`` and ``[E2] .. [/E2]`` around the head and tail wordpieces."""
        idx = {(m.start, m.end): j for j, m in enumerate(mentions)}
        jh, jt = idx.get(tuple(ex.head)), idx.get(tuple(ex.tail))
        pos_h = [i for i, j in enumerate(feat["span"]) if j == jh]
        pos_t = [i for i, j in enumerate(feat["span"]) if j == jt]
        if not pos_h or not pos_t:
            return None
        inserts: dict[int, list[int]] = {}
        for at, marker in ((pos_h[0], 0), (pos_h[-1] + 1, 1), (pos_t[0], 2), (pos_t[-1] + 1, 3)):
            inserts.setdefault(at, []).append(marker)
        out = {k: [] for k in ("input_ids", "span", "token_node", "word")}
        head_pos = tail_pos = -1
        for i in range(len(feat["input_ids"]) + 1):
            for m in sorted(inserts.get(i, []), key=lambda m: m % 2 == 0):  # closing markers first
                if m == 0:
                    head_pos = len(out["input_ids"])
                if m == 2:
                    tail_pos = len(out["input_ids"])
                out["input_ids"].append(self.marker_ids[m])
                out["span"].append(-1)
                out["token_node"].append(-1)
                out["word"].append(-1)
            if i < len(feat["input_ids"]):
                for k in out:
                    out[k].append(feat[k][i])
        return {**out, "label": feat["label"], "head_pos": head_pos, "tail_pos": tail_pos}


def add_markers(tokenizer) -> int:
    """Register the entity marker tokens as special tokens; returns how many were new."""
    return tokenizer.add_special_tokens({"extra_special_tokens": list(MARKERS)},
                                        replace_extra_special_tokens=False)
