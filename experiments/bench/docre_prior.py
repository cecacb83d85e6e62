"""The no-model baseline of document-level RE: a relation prior over entity types.

Given gold entities (as the fused and unfused extractors are scored), every ordered pair of a test
document's entities is assigned the relation most often annotated, in the training documents,
between entities of the same (head type, tail type), when that relation held for at least a
fraction ``t`` of such training pairs. ``t`` is chosen on the validation documents (the best F1
over a grid), so the prior runs in its best regime, then scored once on the test documents:
micro precision, recall and F1 over (head, tail, relation) triples, with F1's 95% interval over
test documents (a bootstrap that re-pools the counts).

Run:  KGLLM_DATA=../shared/data python experiments/bench/docre_prior.py --train-docs 0:350 \\
          --val-docs 350:400 --test-docs 400:500 [--out results/docre_prior.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7)


def _types(doc: dict) -> list[str]:
    return [Counter(m["type"] for m in ent).most_common(1)[0][0] for ent in doc["vertexSet"]]


def fit(docs: list[dict]) -> dict[tuple[str, str], tuple[str, float]]:
    """Per (head type, tail type): the most frequent relation and the fraction of the ordered
    training pairs of those types that it holds for."""
    pairs, rels = Counter(), defaultdict(Counter)
    for doc in docs:
        types, n = _types(doc), len(doc["vertexSet"])
        for h in range(n):
            for t in range(n):
                if h != t:
                    pairs[types[h], types[t]] += 1
        for r, h, t in {(lab["r"], lab["h"], lab["t"]) for lab in doc.get("labels", []) if lab["h"] != lab["t"]}:
            rels[types[h], types[t]][r] += 1
    return {k: (c.most_common(1)[0][0], c.most_common(1)[0][1] / pairs[k]) for k, c in rels.items()}


def counts(prior: dict, docs: list[dict], t: float) -> list[tuple[int, int, int]]:
    """Per document: (correct, predicted, gold) triples of the prior at threshold ``t``."""
    out = []
    for doc in docs:
        types, n = _types(doc), len(doc["vertexSet"])
        gold = {(lab["h"], lab["t"], lab["r"]) for lab in doc.get("labels", []) if lab["h"] != lab["t"]}
        pred = {(h, tl, prior[types[h], types[tl]][0]) for h in range(n) for tl in range(n)
                if h != tl and (types[h], types[tl]) in prior and prior[types[h], types[tl]][1] >= t}
        out.append((len(pred & gold), len(pred), len(gold)))
    return out


def scores(rows: list[tuple[int, int, int]]) -> dict:
    from kgllm.util.stats import micro_f1

    c, p, g = (sum(r[k] for r in rows) for k in range(3))
    return {"precision": c / p if p else 0.0, "recall": c / g if g else 0.0, "f1": float(micro_f1([c, p, g]))}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gold", default=None, help="the Re-DocRED file (default: $KGLLM_DATA/redocred/dev_revised.json)")
    p.add_argument("--train-docs", default="0:350")
    p.add_argument("--val-docs", default="350:400")
    p.add_argument("--test-docs", default="400:500")
    p.add_argument("--out", default=None, help="also write the result as JSON here")
    a = p.parse_args(argv)
    from kgllm.data.datasets import _load_json, select_docs
    from kgllm.util.io import atomic_write_json
    from kgllm.util.paths import dataset_file
    from kgllm.util.stats import bootstrap_seeds_items

    gold = Path(a.gold) if a.gold else dataset_file("redocred", "dev_revised.json")
    data = _load_json(gold)
    prior = fit(select_docs(data, a.train_docs))
    val, test = select_docs(data, a.val_docs), select_docs(data, a.test_docs)
    t = max(GRID, key=lambda x: scores(counts(prior, val, x))["f1"])
    rows = counts(prior, test, t)
    result = {"threshold": t, "validation_f1": scores(counts(prior, val, t))["f1"], **scores(rows),
              "f1_ci_test_documents": bootstrap_seeds_items([rows]), "documents": len(rows),
              "train_docs": a.train_docs, "val_docs": a.val_docs, "test_docs": a.test_docs}
    print(f"type-pair relation prior (threshold {t}, chosen on {a.val_docs}): test {a.test_docs} "
          f"P {result['precision']:.4f} R {result['recall']:.4f} F1 {result['f1']:.4f} "
          f"[{result['f1_ci_test_documents'][0]:.4f}, {result['f1_ci_test_documents'][1]:.4f}]")
    if a.out:
        atomic_write_json(Path(a.out), result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
