"""``kgllm kg-eval``: compare a KG built from Re-DocRED documents with their gold annotations.

Metrics (micro-averaged over documents):

* ``mention_*`` -- predicted entity mentions (``mentions.tsv``) against gold mentions, by
  exact character span;
* ``pair_*`` -- unordered gold entity pairs that hold a relation against entity pairs joined
  by an extracted (non-co-occurrence) edge of the document. Each end of an edge occurrence is
  the named mention of its entity inside the occurrence's evidence span, mapped to the gold
  entity with that exact span (``match="overlap"``: the gold mention it overlaps most); an end
  with no such mention (a resolved pronoun) takes the gold entity most of its entity's mentions
  in the document map to;
* ``typed_*`` -- ordered (head, relation, tail) triples against the gold triples, the ends mapped
  as for ``pair_*`` (meaningful for KGs whose relations are the gold schema's ids, e.g.
  ``--extractor learned`` trained on Re-DocRED; an unmapped end is a false positive);
* ``cooc_pair_*`` -- the same for a baseline that joins every two entities mentioned in one
  sentence, computed from the same predicted mentions (pronouns included, resolved the same
  way) in the same run.

Precision is the standard one: a predicted pair with an end that maps to no gold entity, or
with both ends on the same gold entity, is a false positive. ``lenient=True`` reproduces the
old figure that dropped such pairs from the denominator (reported as ``lenient`` in the output);
it also drops pronoun mentions from the baseline.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path

from kgllm.util.errors import KGFormatError
from kgllm.kg.extraction.corpus import read_corpus
from kgllm.kg.extraction.extract import COOCCURRENCE
from kgllm.kg.graph.folder import read_meta, read_tsv


def prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from true positives and the predicted and gold counts (0 where undefined)."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def gold_documents(gold: Path, n_docs: int, expected_sha: str | None) -> list:
    """The first ``n_docs`` Re-DocRED gold documents, refused unless their SHA-256 is the one the KG was built from."""
    docs = list(read_corpus(gold, "redocred", limit=n_docs))
    digest = hashlib.sha256()
    for d in docs:
        digest.update(d.doc_id.encode() + b"\0" + d.text.encode() + b"\0")
    if expected_sha and digest.hexdigest() != expected_sha:
        raise KGFormatError(f"{gold}: its first {n_docs} documents are not the corpus this KG was built from "
                            "(sha256 differs); build the KG with --format redocred from this file")
    return docs


def _gold(doc) -> tuple[dict, set, set]:
    """Gold mention spans -> entity index, the unordered related entity pairs, and the (head, relation,
    tail) triples."""
    offsets = doc.meta["token_offsets"]
    spans = {}
    for e, mentions in enumerate(doc.meta["vertexSet"]):
        for m in mentions:
            tok = offsets[m["sent_id"]]
            spans[(tok[m["pos"][0]][0], tok[m["pos"][1] - 1][1])] = e
    pairs = {frozenset((lab["h"], lab["t"])) for lab in doc.meta["labels"] if lab["h"] != lab["t"]}
    triples = {(lab["h"], lab["r"], lab["t"]) for lab in doc.meta["labels"] if lab["h"] != lab["t"]}
    return spans, pairs, triples


def _map(span: tuple[int, int], gold_spans: dict, match: str = "exact") -> int | None:
    if span in gold_spans or match == "exact":
        return gold_spans.get(span)
    best, best_overlap = None, 0
    for (s, e), ent in gold_spans.items():
        overlap = min(e, span[1]) - max(s, span[0])
        if overlap > best_overlap:
            best, best_overlap = ent, overlap
    return best


def _pair(a, b, lenient: bool) -> frozenset | None:
    """The key of a predicted pair from its ends (gold ids, or ``("pred", id)`` when unmapped).

    Both ends on one gold entity is a pair of its own (a false positive). ``None``: not counted
    (lenient mode only: an unmapped end or both ends on one gold entity)."""
    if lenient and (a == b or isinstance(a, tuple) or isinstance(b, tuple)):
        return None
    return frozenset((("self", a), a)) if a == b else frozenset((a, b))


def evaluate_redocred(kg_dir: str | Path, gold: str | Path, match: str = "exact", lenient: bool = False) -> dict:
    """All metrics for the KG at ``kg_dir`` against the Re-DocRED file ``gold``.

    ``match`` maps predicted mentions to gold entities for the pair metrics: ``exact`` spans
    or the largest ``overlap``. ``lenient`` drops predicted pairs with an unmapped end instead of
    counting them as false positives (not the standard precision; kept to compare with old figures).
    """
    if match not in ("exact", "overlap"):
        raise ValueError("match must be 'exact' or 'overlap'")
    kg_dir, gold = Path(kg_dir), Path(gold)
    meta = read_meta(kg_dir)
    n_docs = meta.get("corpus", {}).get("documents")
    if not n_docs:
        raise KGFormatError(f"{kg_dir}/meta.json: no corpus document count; not a built KG")
    docs = gold_documents(gold, n_docs, meta.get("corpus", {}).get("sha256"))
    mentions: dict[str, list] = defaultdict(list)  # doc -> [(sent, start, end, entity)]
    pronouns: dict[str, list] = defaultdict(list)
    for doc, sent, start, end, ent, label, _text in read_tsv(kg_dir / "mentions.tsv", 7):
        (pronouns if label == "PRON" else mentions)[doc].append((int(sent), int(start), int(end), int(ent)))
    relations = [row[1] for row in read_tsv(kg_dir / "relations.tsv", 3)]
    occurrences: dict[str, list] = defaultdict(list)
    for h, r, t, doc, sent, start, end, _ in read_tsv(kg_dir / "provenance.tsv", 8):
        if relations[int(r)] != COOCCURRENCE:
            occurrences[doc].append((int(h), int(t), int(sent), int(start), int(end), relations[int(r)]))
    tp_m = n_pm = n_gm = 0
    counts = {"pair": [0, 0, 0], "cooc_pair": [0, 0, 0], "typed": [0, 0, 0]}
    for doc in docs:
        gold_spans, gold_pairs, gold_triples = _gold(doc)
        pred = mentions.get(doc.doc_id, [])
        pred_spans = {(s, e) for _, s, e, _ in pred}
        tp_m += len(pred_spans & set(gold_spans))
        n_pm += len(pred_spans)
        n_gm += len(gold_spans)
        gold_of = {(s, e): _map((s, e), gold_spans, match) for _, s, e, _ in pred}
        votes: dict[int, Counter] = defaultdict(Counter)
        by_sent: dict[int, list] = defaultdict(list)
        for sent, s, e, ent in pred:
            by_sent[sent].append((s, e, ent))
            if gold_of[(s, e)] is not None:
                votes[ent][gold_of[(s, e)]] += 1
        entity_gold = {ent: c.most_common(1)[0][0] for ent, c in votes.items()}

        def resolve(ent: int, span: tuple[int, int] | None):
            """A pair end: the gold entity of its named mention ``span``; without one (a resolved
            pronoun) the gold entity most of ``ent``'s mentions map to; ``("pred", ent)`` if unmapped."""
            gold_id = gold_of[span] if span is not None else entity_gold.get(ent)
            return ("pred", ent) if gold_id is None else gold_id

        extracted, typed = set(), set()
        for h, t, sent, start, end, rel in occurrences.get(doc.doc_id, []):
            ends = {}
            for s, e, ent in by_sent.get(sent, []):
                if ent in (h, t) and start <= s and e <= end:
                    ends.setdefault(ent, (s, e))
            gh, gt = resolve(h, ends.get(h)), resolve(t, ends.get(t))
            key = _pair(gh, gt, lenient)
            if key is not None:
                extracted.add(key)
                typed.add((gh, rel, gt) if gh != gt else (("self", gh), rel, gt))
        cooc_items = {sent: [(ent, (s, e)) for s, e, ent in items] for sent, items in by_sent.items()}
        if not lenient:  # resolved pronouns count for the baseline as they do for the system
            for sent, _s, _e, ent in pronouns.get(doc.doc_id, []):
                cooc_items.setdefault(sent, []).append((ent, None))
        cooc = set()
        for items in cooc_items.values():
            for i, (a, span_a) in enumerate(items):
                for b, span_b in items[i + 1:]:
                    if a == b:
                        continue
                    key = _pair(resolve(a, span_a), resolve(b, span_b), lenient)
                    if key is not None:
                        cooc.add(key)
        for name, pred, gold_set in (("pair", extracted, gold_pairs), ("cooc_pair", cooc, gold_pairs),
                                     ("typed", typed, gold_triples)):
            c = counts[name]
            c[0] += len(pred & gold_set)
            c[1] += len(pred)
            c[2] += len(gold_set)
    out = {"documents": len(docs), "match": match, "precision": "lenient" if lenient else "standard"}
    out.update(zip(("mention_precision", "mention_recall", "mention_f1"), prf(tp_m, n_pm, n_gm)))
    for name, (tp, n_pred, n_gold) in counts.items():
        out.update(zip((f"{name}_precision", f"{name}_recall", f"{name}_f1"), prf(tp, n_pred, n_gold)))
        out["typed_predicted" if name == "typed" else f"{name}s_predicted"] = n_pred
    out["gold_mentions"], out["gold_pairs"], out["gold_triples"] = n_gm, counts["pair"][2], counts["typed"][2]
    out["pair_f1_over_cooc"] = out["pair_f1"] / out["cooc_pair_f1"] if out["cooc_pair_f1"] else 0.0
    return out


def format_eval(metrics: dict) -> str:
    """:func:`evaluate_redocred` metrics as a text table."""
    keys = ["mention_precision", "mention_recall", "mention_f1", "pair_precision", "pair_recall", "pair_f1",
            "cooc_pair_precision", "cooc_pair_recall", "cooc_pair_f1", "pair_f1_over_cooc",
            "typed_precision", "typed_recall", "typed_f1"]
    lines = [f"documents {metrics['documents']}  gold mentions {metrics['gold_mentions']}  "
             f"gold pairs {metrics['gold_pairs']}  gold triples {metrics['gold_triples']}  "
             f"pair precision: {metrics['precision']}"]
    lines += [f"{k:<22}{metrics[k]:.4f}" for k in keys]
    return "\n".join(lines)
