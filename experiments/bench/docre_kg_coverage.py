"""What a fused DocRE model can read from its KG, per group of documents: of each document's gold
(head, relation, tail) triples, how many the KG states between the entities' names.

A fused extractor links a document's mentions to KG nodes by name, so a gold triple is readable
when a node carries the head's name, one carries the tail's, and an edge joins them (``pair``, any
relation, either direction) or an edge of the triple's own relation does (``typed``). An entity's
name is its first gold mention. Run it on a cross-fitted KG (``kgllm cross-fit-kg``) to check that
training and test documents see edges of the same quality, and on a KG built by a model trained on
the training documents to see the asymmetry cross-fitting removes.

Run:  KGLLM_DATA=../shared/data python experiments/bench/docre_kg_coverage.py graphs/docre_crossfit/kg \\
          --groups "fold 0=0:175" "fold 1=175:350" "test=400:500" [--out results/docre_kg_coverage.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence


def gold_facts(data: list, docs: Sequence[int]) -> list:
    """One fact per distinct gold triple of the documents (subject and object named by their first mention)."""
    from kgllm.kg.sources.lama import LamaFact

    facts = {}
    for d in docs:
        ents = data[d]["vertexSet"]
        for lab in data[d].get("labels", []):
            h, t = lab["h"], lab["t"]
            key = (d, h, lab["r"], t)
            facts[key] = LamaFact(lab["r"], f"doc{d}:e{h}", ents[h][0]["name"], f"doc{d}:e{t}", ents[t][0]["name"])
    return list(facts.values())


def coverage(kg, data: list, groups: dict[str, list[int]]) -> list[dict]:
    """Per group: gold triples, and how many have a node of each name, an edge between them, one of their relation."""
    from kgllm.workflows.knowledge.corpus import kg_recall

    rows = []
    for name, docs in groups.items():
        facts = gold_facts(data, docs)
        counts = kg_recall(kg, facts)["all"] if facts else {"facts": 0, "subject": 0, "object": 0, "pair": 0, "typed": 0}
        rows.append({"group": name, "documents": len(docs), **counts})
    return rows


def to_markdown(rows: list[dict]) -> str:
    def pct(n: int, d: int) -> str:
        return f"{n:,} ({n / d:.1%})" if d else "–"

    lines = ["| documents | gold triples | head's name in the KG | tail's name | pair (an edge between them) | typed (that relation) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        f = r["facts"]
        lines.append(f"| {r['group']} ({r['documents']}) | {f:,} | {pct(r['subject'], f)} | {pct(r['object'], f)} | "
                     f"{pct(r['pair'], f)} | {pct(r['typed'], f)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kg", help="a KG folder")
    p.add_argument("--groups", nargs="+", required=True, help='NAME=DOCS, e.g. "test=400:500" (ranges as --docs)')
    p.add_argument("--gold", default=None, help="the Re-DocRED file (default: $KGLLM_DATA/redocred/dev_revised.json)")
    p.add_argument("--out", default=None, help="also write the table here")
    a = p.parse_args(argv)
    from kgllm.data.datasets import _load_json, doc_indices
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.util.io import atomic_write_text
    from kgllm.util.paths import dataset_file

    gold = Path(a.gold) if a.gold else dataset_file("redocred", "dev_revised.json")
    data = _load_json(gold)
    groups = {}
    for g in a.groups:
        name, sep, spec = g.rpartition("=")
        if not sep or not name:
            p.error(f"--groups {g!r}: expected NAME=DOCS")
        groups[name] = doc_indices(spec, len(data))
    table = to_markdown(coverage(KnowledgeGraph.load(a.kg), data, groups))
    print(table)
    if a.out:
        atomic_write_text(Path(a.out), table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
