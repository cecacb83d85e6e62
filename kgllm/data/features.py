"""TextExample -> model features: wordpieces, per-token KG links, the task's labels.

Mentions come from spaCy NER (cached on disk per text set) plus any spans the
dataset already knows (e.g. the head and tail of a relation example, which win
over overlapping NER spans). Each mention is linked to a KG node
(:class:`~kgllm.linking.EntityLinker`) and mapped to wordpieces through the
tokenizer's offset mapping (:func:`~kgllm.linking.align_spans`). What differs between tasks
(windows, markers, token labels) is the task's (:mod:`kgllm.tasks`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from kgllm.data.examples import PAIR_SEP, TextExample
from kgllm.util.io import atomic_write_text, stable_hash
from kgllm.linking import EntityLinker, align_spans
from kgllm.util.paths import cache_dir

if TYPE_CHECKING:  # pragma: no cover
    from kgllm.tasks import Task

log = logging.getLogger(__name__)


def detect_mentions(texts: Sequence[str], spacy_model: str | None = None, batch_size: int = 64,
                    use_cache: bool = True, progress: bool = True) -> list[list[tuple[int, int, str]]]:
    """spaCy NER spans ``(start, end, label)`` per text, cached under ``$KGLLM_CACHE``."""
    from tqdm.auto import tqdm

    from kgllm.kg.extraction.config import DEFAULT_EXCLUDED_LABELS
    from kgllm.kg.extraction.extract import load_pipeline, pipeline_info

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
    """Counts of one featurised split: examples, truncated, dropped, and linked of all mentions."""

    examples: int = 0
    truncated: int = 0
    dropped: int = 0
    linked_mentions: int = 0
    mentions: int = 0

    def __add__(self, other: "FeatureStats") -> "FeatureStats":
        return FeatureStats(*(getattr(self, f) + getattr(other, f) for f in
                              ("examples", "truncated", "dropped", "linked_mentions", "mentions")))

    def summary(self) -> str:
        rate = self.linked_mentions / max(self.mentions, 1)
        return (f"{self.examples} examples, {self.truncated} truncated, {self.dropped} dropped "
                f"(entity cut off by max_length), {self.linked_mentions}/{self.mentions} mentions linked "
                f"({rate:.0%})")


def class_counts(features: Sequence[dict], label_names: Sequence[str], shown: int = 8) -> str:
    """``"; classes: neg 1,900, pos 2,100"`` for single-label features (the ``shown`` most frequent
    classes, then how many more); ``""`` for tasks whose labels are not one class per feature."""
    from collections import Counter

    labels = [f.get("label") for f in features]
    if not label_names or not labels or not all(isinstance(y, int) and 0 <= y < len(label_names) for y in labels):
        return ""
    from kgllm.kg.graph.wikidata import with_label

    counts = Counter(labels).most_common()
    text = "; classes: " + ", ".join(f"{with_label(label_names[y])} {n:,}" for y, n in counts[:shown])
    if len(counts) > shown:
        text += f" and {len(counts) - shown} more"
    if len(counts) < len(label_names):
        text += f" ({len(label_names) - len(counts)} of {len(label_names)} absent)"
    return text


class Featurizer:
    """Turns examples into feature dicts (plain lists) for the collator.

    Args:
        tokenizer: a fast HF tokenizer (offset mapping), prepared for the task
            (:meth:`~kgllm.tasks.base.Task.prepare_tokenizer`: e.g. the relation markers).
        linker: entity linker of the KG.
        task: a :class:`~kgllm.tasks.base.Task` or a task name (``mlm``, ``seq_cls``, ``rel_cls``,
            ``token_cls``); the task gives each feature its labels (:meth:`~kgllm.tasks.base.Task.finish`).
        max_length: wordpieces per example, special tokens and task tokens included. Texts longer
            than that are cut into consecutive windows when the task asks for it (MLM), else truncated.

    A feature holds ``input_ids``, ``span`` (mention index per wordpiece, -1 outside mentions),
    ``token_node`` (KG node per wordpiece, -1 unlinked), ``word`` (word index, -1 on special
    tokens), ``label`` and the task's own keys.
    """

    def __init__(self, tokenizer, linker: EntityLinker, task: "Task | str", max_length: int = 128) -> None:
        from kgllm.tasks import get_task

        self.tok = tokenizer
        self.linker = linker
        self.task = get_task(task).setup(tokenizer)
        self.max_length = max_length
        self.stats = FeatureStats()

    def __call__(self, ex: TextExample, found: Sequence[tuple[int, int, str]]) -> list[dict]:
        from kgllm.linking import Mention

        keyed = [(s, e, "LINK") for s, e, _ in ex.links]
        spans = merge_spans(list(ex.spans) + keyed, found)
        by_key = {(s, e): self.linker.key_to_id.get(k, -1) for s, e, k in ex.links}
        typed = [sp for sp in spans if (sp[0], sp[1]) not in by_key]
        mentions = sorted(self.linker.link(ex.full_text, typed) +
                          [Mention(s, e, "LINK", by_key[(s, e)]) for s, e, _ in keyed], key=lambda m: m.start)
        self.stats.mentions += len(mentions)
        self.stats.linked_mentions += sum(m.node >= 0 for m in mentions)
        windows = self.task.windows
        budget = self.max_length - self.task.reserved
        truncation = self.task.truncation
        pair = () if ex.text_pair is None else (ex.text_pair,)
        if pair and windows:
            raise ValueError(f"task {self.task.name!r} cuts texts into windows, which text pairs cannot be")
        enc = self.tok(ex.text, *pair, return_offsets_mapping=True,
                       truncation=("longest_first" if pair else True) if truncation else False,
                       max_length=budget if truncation else None, return_overflowing_tokens=windows, stride=0)
        feats = []
        for w in (range(len(enc["input_ids"])) if windows else [None]):
            ids = enc["input_ids"] if w is None else enc["input_ids"][w]
            offsets = enc["offset_mapping"] if w is None else enc["offset_mapping"][w]
            words = enc.word_ids(0 if w is None else w)
            extra = {}
            if pair:  # offsets of the second text index into full_text; segment ids for the model
                shift = len(ex.text) + len(PAIR_SEP)
                offsets = [(a + shift, b + shift) if s == 1 else (a, b) for (a, b), s in zip(offsets, enc.sequence_ids())]
                extra["token_type"] = list(enc["token_type_ids"])
            span_of = align_spans(offsets, [(m.start, m.end) for m in mentions])
            feat = self.task.finish({"input_ids": list(ids), "span": span_of,
                                     "token_node": [mentions[j].node if j >= 0 else -1 for j in span_of],
                                     "word": [-1 if x is None else x for x in words], "label": ex.label, **extra},
                                    ex, mentions)
            if feat is None:
                self.stats.dropped += 1
                continue
            feats.append(feat)
        if truncation and not windows and len(self.tok(ex.text, *pair)["input_ids"]) > budget:
            self.stats.truncated += 1
        self.stats.examples += len(feats)
        return feats
