"""What the learned extractor's recall margin buys and costs: for each ``--margins`` value,

* precision, recall and F1 of the extractor on Re-DocRED documents it never trained on
  (``kgllm eval-re --margin``, gold entities, documents ``--docs``), and
* how many of the corpus experiment's probed part-B facts (``corpus_experiment.py``) the KG that
  ``build-kg --extractor learned --re-margin M`` writes from parts A and B states, per relation:
  the pair (an edge of any relation between a node of the subject's label and one of the object's)
  and typed (an edge of the fact's own relation), next to the dependency rules' KG.

The extractor is the shipped one unless ``--re-model`` names another. KGs go to
``--graphs/learned_m<M>`` (an existing one is read, not rebuilt).

Run:  KGLLM_DATA=../shared/data python experiments/bench/extractor_recall.py --margins 0,1,2,3
          [--split-seed 0] [--graphs graphs/extractor_recall] [--json results/extractor_recall.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--margins", default="0,1,2,3")
    p.add_argument("--re-model", default=None, help="extractor checkpoint or file (default: the shipped one)")
    p.add_argument("--docs", default="400:500", help="Re-DocRED documents scored by eval-re (never trained on)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--config", default="experiments/pretrain_lama.yaml", help="the corpus experiment's config")
    p.add_argument("--graphs", default="graphs/extractor_recall")
    p.add_argument("--dependency-kg", default=None,
                   help="the corpus experiment's dependency KG of parts A+B, for its row (optional)")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    import yaml

    from kgllm.data.datasets import lama_facts
    from kgllm.kg.extraction.build import build_kg
    from kgllm.kg.extraction.config import ExtractConfig
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.kg.sources.lama import read_templates, split_facts
    from kgllm.lit.extractor_file import SHIPPED
    from kgllm.util.paths import data_root, dataset_file
    from kgllm.workflows.eval_re import evaluate
    from kgllm.workflows.knowledge.corpus import corpus_documents, fact_edges, kg_recall

    root = data_root()
    model = a.re_model or str(SHIPPED)
    args = yaml.safe_load(Path(a.config).read_text())["data"]["init_args"]["dataset_args"]
    facts = lama_facts(root, args["relations"], args["max_facts"])
    split = split_facts(facts, args["kg_only_fraction"], a.split_seed)
    templates = read_templates(dataset_file("lama_trex", "relations.jsonl", root=root))
    graphs = Path(a.graphs)
    graphs.mkdir(parents=True, exist_ok=True)
    corpus = graphs / f"corpus_a_b_split{a.split_seed}.jsonl"
    if not corpus.exists():
        corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus_documents(split, templates)))
    gold = f"redocred:{root / 'redocred' / 'dev_revised.json'}"
    rows = []

    def recall_row(name: str, kg_dir: Path, extra: dict) -> dict:
        kg = KnowledgeGraph.load(kg_dir)
        rec = kg_recall(kg, split.kg_only, fact_edges(kg, split.kg_only))
        row = {"extractor": name, **extra, "edges": len(kg.edges), "recall": rec}
        print(json.dumps({k: v for k, v in row.items() if k != "recall"}
                         | {"pair": rec["all"]["pair"], "typed": rec["all"]["typed"], "facts": rec["all"]["facts"]}),
              flush=True)
        return row

    if a.dependency_kg:
        rows.append(recall_row("dependency", Path(a.dependency_kg), {}))
    for margin in (float(m) for m in a.margins.split(",")):
        scores = evaluate(model, gold, a.docs, progress=False, margin=margin)
        out = graphs / f"learned_m{margin:g}"
        if not out.exists():
            build_kg(corpus, out, fmt="jsonl", progress=False,
                     cfg=ExtractConfig(extractor="learned", re_model=a.re_model, re_margin=margin))
        rows.append(recall_row("learned", out, {"margin": margin, "precision": scores["precision"],
                                                "recall_redocred": scores["recall"], "f1": scores["f1"]}))
    rels = sorted(r for r in rows[-1]["recall"] if r != "all")
    print(f"\nprobed part-B facts: {rows[-1]['recall']['all']['facts']} (split seed {a.split_seed}); Re-DocRED "
          f"documents {a.docs} for precision/recall (gold entities)")
    print("| extractor | margin | Re-DocRED P / R / F1 | KG edges | pair recall | typed recall | "
          + " | ".join(f"{r} pair / typed" for r in rels) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(rels))
    for r in rows:
        rec = r["recall"]
        share = lambda x, k: x[k] / x["facts"] if x["facts"] else float("nan")  # noqa: E731
        prf = (f"{r['precision']:.3f} / {r['recall_redocred']:.3f} / {r['f1']:.3f}" if "precision" in r else "–")
        print(f"| {r['extractor']} | {r.get('margin', '–')} | {prf} | {r['edges']:,} | {share(rec['all'], 'pair'):.3f} | "
              f"{share(rec['all'], 'typed'):.3f} | "
              + " | ".join(f"{share(rec[x], 'pair'):.2f} / {share(rec[x], 'typed'):.2f}" for x in rels) + " |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
