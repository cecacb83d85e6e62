"""``kgllm kg-diff A B``: what differs between two KG folders, matched by entity key and relation
name (ids may differ), ignoring retired entities and relations without edges.

Compared: live entities (keys), their labels, types, mention counts, aliases, sources and
descriptions; relations; triples (by keys) with their counts and confidences; and provenance
rows (as multisets per triple).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kgllm.kg.graph.store import KnowledgeGraph

ASPECTS = ("entities", "labels", "types", "counts", "aliases", "sources", "descriptions", "relations", "triples",
           "triple_counts", "provenance")


def _view(kg: KnowledgeGraph) -> dict:
    live = [i for i in range(kg.num_entities) if i not in kg.retired]
    ents = {kg.entities[i].key: kg.entities[i] for i in live}
    key = lambda i: kg.entities[i].key  # noqa: E731
    triples = {(key(h), kg.relations[r], key(t)): e for (h, r, t), e in kg.edges.items()}
    return {"ents": ents, "desc": {key(i): d for i, d in kg.descriptions.items() if i not in kg.retired},
            "rels": {kg.relations[r] for (_, r, _) in kg.edges}, "triples": triples}


def diff_kgs(a: KnowledgeGraph, b: KnowledgeGraph, ignore: tuple[str, ...] = (), examples: int = 5) -> dict:
    """``{aspect: {"count": n, "examples": [...]}}`` for every aspect in which ``a`` and ``b`` differ."""
    va, vb = _view(a), _view(b)
    out: dict[str, dict] = {}

    def note(aspect: str, items: list) -> None:
        if items and aspect not in ignore:
            out[aspect] = {"count": len(items), "examples": items[:examples]}

    ka, kb = set(va["ents"]), set(vb["ents"])
    note("entities", [f"only in A: {k}" for k in sorted(ka - kb)] + [f"only in B: {k}" for k in sorted(kb - ka)])
    both = sorted(ka & kb)
    for aspect, get in (("labels", lambda e: e.label), ("types", lambda e: e.etype), ("counts", lambda e: e.count),
                        ("aliases", lambda e: sorted(e.aliases)), ("sources", lambda e: sorted(e.sources))):
        note(aspect, [f"{k}: {get(va['ents'][k])!r} vs {get(vb['ents'][k])!r}" for k in both
                      if get(va["ents"][k]) != get(vb["ents"][k])])
    note("descriptions", [f"{k}: {va['desc'].get(k)!r} vs {vb['desc'].get(k)!r}" for k in sorted(set(va["desc"]) | set(vb["desc"]))
                          if va["desc"].get(k) != vb["desc"].get(k)])
    note("relations", [f"only in A: {r}" for r in sorted(va["rels"] - vb["rels"])]
         + [f"only in B: {r}" for r in sorted(vb["rels"] - va["rels"])])
    ta, tb = va["triples"], vb["triples"]
    note("triples", [f"only in A: {' '.join(t)}" for t in sorted(set(ta) - set(tb))]
         + [f"only in B: {' '.join(t)}" for t in sorted(set(tb) - set(ta))])
    common = sorted(set(ta) & set(tb))
    note("triple_counts", [f"{' '.join(t)}: count {ta[t].count} vs {tb[t].count}, confidence "
                           f"{ta[t].confidence:.4f} vs {tb[t].confidence:.4f}" for t in common
                           if ta[t].count != tb[t].count or abs(ta[t].confidence - tb[t].confidence) > 5e-5])
    note("provenance", [f"{' '.join(t)}: {len(ta[t].provenance)} vs {len(tb[t].provenance)} rows" for t in common
                        if Counter(map(_prov, ta[t].provenance)) != Counter(map(_prov, tb[t].provenance))])
    return out


def _prov(row: tuple) -> tuple:
    doc, sent, start, end, conf = row
    return str(doc), int(sent), int(start), int(end), round(float(conf), 4)


def diff_folders(a: str | Path, b: str | Path, ignore: tuple[str, ...] = (), examples: int = 5) -> dict:
    """The differences between two KG folders, matched by entity key and relation name (:func:`diff_kgs`)."""
    return diff_kgs(KnowledgeGraph.load(a, provenance=True), KnowledgeGraph.load(b, provenance=True), ignore, examples)


def format_diff(diff: dict) -> str:
    """A :func:`diff_folders` result as text, one block per aspect with examples."""
    if not diff:
        return "no differences"
    lines = []
    for aspect, d in diff.items():
        lines.append(f"{aspect}: {d['count']} differ")
        lines += [f"  {x}" for x in d["examples"]]
    return "\n".join(lines)
