"""Relation extractors: how ``build-kg`` turns a parsed document's mentions into typed edges.

The contract (every extractor keeps it, one file per extractor):

* **input** -- a :class:`MentionedDoc`: the spaCy parse, the document's mentions (entities and
  resolved pronouns) with the local entity cluster each belongs to, and each token's sentence;
* **output** -- typed edges ``[head_cluster, relation, tail_cluster, sentence, start_char,
  end_char, confidence]``: ``sentence`` is the evidence sentence (for a cross-sentence edge the
  first one of its evidence), the character span covers the evidence, ``confidence`` is in (0, 1];
* a ``version`` string that goes into ``meta.json`` and the RDF provenance
  (``prov:wasGeneratedBy``), so a KG says which extractor made each edge; ``meta()`` adds what
  else ``meta.json`` should record (a model's hash and relation schema, ``relation_labels``).

Extractors are chosen by name, ``build-kg --extractor dependency+cooccurrence`` (edges of all of
them, in that order). Registered by module path and imported only when chosen, so the KG builder
never imports torch unless a model-backed extractor is asked for. To add one: a new file here with
a subclass of :class:`Extractor` and one line in :data:`EXTRACTORS` (or
:func:`register_extractor` from your own package).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, NamedTuple

from kgllm.util.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from spacy.tokens import Doc, Span

    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.extraction.extract import ParseArrays

class TripleRow(NamedTuple):
    """One typed edge as an extractor returns it and a shard stores it (a JSON list in this order)."""

    head: int  # local entity cluster
    relation: str
    tail: int
    sentence: int  # evidence sentence
    start: int  # character span of the evidence
    end: int
    confidence: float


class MentionRow(NamedTuple):
    """One mention as a shard stores it."""

    entity: int  # local entity cluster
    sentence: int
    start: int
    end: int
    text: str
    label: str  # spaCy label, or PRON for a resolved pronoun


#: extractor name -> "module:Class" (imported on first use)
EXTRACTORS: dict[str, str] = {
    "dependency": "kgllm.kg.extraction.extractors.dependency:DependencyExtractor",
    "cooccurrence": "kgllm.kg.extraction.extractors.cooccurrence:CooccurrenceExtractor",
    # model-backed, so it lives with the model (kgllm.lit) and is imported only when chosen
    "learned": "kgllm.lit.learned_extractor:LearnedExtractor",
}


@dataclass
class MentionedDoc:
    """One parsed document with its mentions, as every extractor receives it.

    Attributes:
        doc: the spaCy ``Doc``.
        parse: its per-token arrays (:class:`~kgllm.kg.extraction.extract.ParseArrays`).
        spans: mention spans (entities, then resolved pronouns labelled ``PRON``).
        owner: local entity cluster of each mention.
        sent_of: sentence index of each token.
        order: mention indices in text order.
    """

    doc: "Doc"
    parse: "ParseArrays"
    spans: list["Span"]
    owner: list[int]
    sent_of: list[int]
    order: list[int]

    def by_sentence(self) -> dict[int, list[int]]:
        """Sentence index -> its mentions, in text order."""
        out: dict[int, list[int]] = {}
        for m in self.order:
            out.setdefault(self.sent_of[self.spans[m].start], []).append(m)
        return out

    def sentence_pairs(self) -> Iterator[tuple[int, int, int]]:
        """``(sentence, mi, mj)`` for every two mentions of one sentence that belong to different
        entities, do not overlap and are not both pronouns (``mi`` first in the text)."""
        for sent, idx in self.by_sentence().items():
            for i, mi in enumerate(idx):
                for mj in idx[i + 1:]:
                    a, b = self.spans[mi], self.spans[mj]
                    if self.owner[mi] == self.owner[mj] or a.end > b.start or a.label_ == b.label_ == "PRON":
                        continue
                    yield sent, mi, mj

    def span_of(self, mi: int, mj: int) -> tuple[int, int]:
        a, b = self.spans[mi], self.spans[mj]
        return min(a.start_char, b.start_char), max(a.end_char, b.end_char)


class Extractor:
    """Base class: see the module docstring for the contract."""

    name: str = ""
    version: str = ""

    def __init__(self, cfg: "ExtractConfig") -> None:
        self.cfg = cfg

    def extract(self, mdoc: MentionedDoc) -> list[TripleRow]:  # pragma: no cover - abstract
        raise NotImplementedError

    def meta(self) -> dict:
        """What ``meta.json`` records about this extractor beyond its version (e.g. a model's hash and
        relation schema); a ``relation_labels`` entry names the relations in the KG's own meta."""
        return {}


def register_extractor(name: str, target: str) -> None:
    """Make ``"module:Class"`` available as ``--extractor NAME``."""
    if name in EXTRACTORS:
        raise ValueError(f"extractor {name!r} is already registered")
    EXTRACTORS[name] = target


def extractor_names(spec: str) -> list[str]:
    """``"dependency+cooccurrence"`` -> the names, checked against the registry."""
    names = [n.strip() for n in spec.split("+")]
    if "" in names:
        raise ConfigError(f"extractor {spec!r} has an empty name between '+' signs; choose from {sorted(EXTRACTORS)}")
    unknown = [n for n in names if n not in EXTRACTORS]
    if not names or unknown:
        raise ConfigError(f"unknown extractor {'+'.join(unknown) or spec!r}; choose from {sorted(EXTRACTORS)} "
                          "(combine with '+')")
    if len(set(names)) != len(names):
        raise ConfigError(f"extractor {spec!r} names one extractor twice")
    return names


def load_extractors(cfg: "ExtractConfig") -> list[Extractor]:
    """The extractors ``cfg.extractor`` names, built with ``cfg`` (imported here, lazily)."""
    out = []
    for name in extractor_names(cfg.extractor):
        module, _, cls = EXTRACTORS[name].partition(":")
        out.append(getattr(importlib.import_module(module), cls)(cfg))
    return out


def extractor_version(cfg: "ExtractConfig") -> str:
    """What ``meta.json`` and the RDF provenance record as the extractor (versions joined by ``+``)."""
    return "+".join(e.version for e in load_extractors(cfg))


def extractor_meta(cfg: "ExtractConfig") -> dict:
    """The extractors' own ``meta()`` entries, merged."""
    out: dict = {}
    for e in load_extractors(cfg):
        out.update(e.meta())
    return out
