"""Dependency-path rules: the relation between two mentions of one sentence is read off the
shortest dependency path between their root tokens.

* ``Obama <-nsubjpass- born -prep-> in -pobj-> Honolulu`` gives ``born_in``;
* ``Paris <-nsubj- is -attr-> capital -prep-> of -pobj-> France`` gives ``capital_of``;
* ``Merkel -appos-> chancellor -prep-> of -pobj-> Germany`` gives ``chancellor_of``.

The predicate is a trigger word (verb lemma, passive participle as written, or common noun;
forms of *be* never) plus the preposition nearest the tail. The mention that is the (passive)
subject on its side of the path is the head, otherwise the earlier mention; dates and numbers
are always tails. The confidence is a heuristic that falls with path length:
``1 / (1 + 0.25 * (arcs - 1))``. Paths longer than ``max_path_len`` arcs (``time_max_path_len``
for pairs with a date or time) give no relation; two dates or numbers are never related.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgllm.kg.extraction.extractors import Extractor, MentionedDoc, TripleRow
from kgllm.kg.graph.normalize import coarse_type

if TYPE_CHECKING:  # pragma: no cover
    from kgllm.kg.extraction.extract import ParseArrays

SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj", "csubjpass", "agent"}


class DependencyExtractor(Extractor):
    """Rule extractor: a typed edge named by the dependency path (verb, preposition) between two entities of a sentence."""

    name = "dependency"
    version = "kgllm-dep-path/1"

    def extract(self, mdoc: MentionedDoc) -> list[TripleRow]:
        cfg, spans, owner = self.cfg, mdoc.spans, mdoc.owner
        out, seen = [], set()
        covered_by_sent: dict[int, tuple[dict, set]] = {}
        for sent, idx in mdoc.by_sentence().items():
            tokens = {m: set(range(spans[m].start, spans[m].end)) for m in idx}
            covered_by_sent[sent] = tokens, set().union(*tokens.values())
        for sent, mi, mj in mdoc.sentence_pairs():
            a, b = spans[mi], spans[mj]
            kinds = {coarse_type(a.label_), coarse_type(b.label_)}
            if kinds <= {"TIME", "NUM"}:
                continue  # dates and numbers are attributes of things, not of each other
            limit = cfg.time_max_path_len if "TIME" in kinds else cfg.max_path_len
            tokens, covered = covered_by_sent[sent]
            found = dependency_relation(mdoc.parse, (a.start, a.end, a.label_), (b.start, b.end, b.label_), limit,
                                        covered - tokens[mi] - tokens[mj])
            if found:
                pred, a_head, conf = found
                h, t = (owner[mi], owner[mj]) if a_head else (owner[mj], owner[mi])
                if (h, pred, t, sent) not in seen:
                    seen.add((h, pred, t, sent))
                    out.append(TripleRow(h, pred, t, sent, *mdoc.span_of(mi, mj), round(conf, 4)))
        return out


def dependency_relation(parse: "ParseArrays", a: tuple[int, int, str], b: tuple[int, int, str], max_path_len: int,
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
