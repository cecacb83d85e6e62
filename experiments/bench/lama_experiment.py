"""The LAMA knowledge-probe experiment, end to end.

1. KGs from LAMA T-REx facts (test and train splits): ``graphs/lama``, and ``graphs/lama_heldout``
   without the edges of the probed facts.
2. MLM pretraining on the evidence sentences of the probed relations (``pretrain_lama.yaml``)
   for every fusion variant, with the same data, budget and seed(s), once per KG
   (``none`` ignores the KG, so it runs once), via ``kgllm ablate``.
3. ``kgllm probe`` of each best checkpoint on the same relations (P@1 with the KG fused in,
   and with fusion switched off at inference).

Run:  KGLLM_DATA=../shared/data python experiments/bench/lama_experiment.py [--variants none,gated,xattn,interaction]
      [--seeds 0] [--out results/lama] [extra overrides for kgllm ablate, e.g. --trainer.max_epochs 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "pretrain_lama.yaml"


def build_kgs(data_dir, relations: list[str], max_facts: int, out: Path) -> tuple[Path, Path]:
    """The full T-REx KG and a copy without the probed facts' edges."""
    from kgllm.kg.imports import import_lama
    from kgllm.kg.store import KnowledgeGraph
    from kgllm.paths import dataset_file

    folder = dataset_file("lama_trex", "relations.jsonl", root=data_dir).parent
    full_dir, held_dir = out / "lama", out / "lama_heldout"
    kg = import_lama(folder, splits=("test", "train"))
    probed = set()
    for pid in relations:
        path = folder / f"{pid}.test.jsonl"
        if not path.is_file():
            continue  # a relation without probe facts (T-REx ships test facts for 28 of 41)
        for line in path.read_text(encoding="utf-8").splitlines()[:max_facts]:
            fact = json.loads(line)
            probed.add((f"wd:{fact['sub_uri']}", pid, f"wd:{fact['obj_uri']}"))
    if not full_dir.exists():
        kg.save(full_dir)
    if not held_dir.exists():
        held = KnowledgeGraph(dict(kg.meta, probed_edges_removed=len(probed)))
        for e in kg.entities:
            held.add_entity(e.key, e.label, e.etype, e.aliases, e.count, e.sources)
        for (h, r, t), edge in kg.edges.items():
            if (kg.entities[h].key, kg.relations[r], kg.entities[t].key) not in probed:
                for prov in edge.provenance:
                    held.add_edge(h, kg.relations[r], t, prov, prov[4])
        held.save(held_dir)
    return full_dir, held_dir


def main() -> int:
    from kgllm.ablate import main as ablate, read_rows
    from kgllm.probe import probe

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="none,gated,xattn,interaction")
    p.add_argument("--seeds", default="0")
    p.add_argument("--out", default="results/lama")
    p.add_argument("--graphs", default="graphs")
    p.add_argument("--data-dir", default=None)
    a, extra = p.parse_known_args()
    extra = [x for x in extra if x != "--"]
    args = yaml.safe_load(CONFIG.read_text())["data"]["init_args"]["dataset_args"]
    relations, max_facts = args["relations"], args["max_facts"]
    full, held = build_kgs(a.data_dir, relations, max_facts, Path(a.graphs))
    out = Path(a.out)
    variants = a.variants.split(",")
    table = []
    for kg, name in ((full, "facts in KG"), (held, "facts removed")):
        runs = variants if kg == full else [v for v in variants if v != "none"]
        if not runs:
            continue
        ablate(["--config", str(CONFIG), "--variants", ",".join(runs), "--seeds", a.seeds,
                "--out", str(out / kg.name), "--data.kg_dir", str(kg), *extra])
        for row in read_rows(out / kg.name / "results.csv"):
            if row["variant"] not in runs:
                continue
            res = probe(row["best_ckpt"], a.data_dir, relations, max_facts, str(kg))
            table.append({"kg": name, "variant": row["variant"], "seed": row["seed"],
                          "p_at_1": res["with_kg"]["p_at_1"], "p_at_1_no_kg_at_inference": res["without_kg"]["p_at_1"],
                          "facts": res["with_kg"]["facts"], "relations": res["relations"]})
            print(json.dumps({k: v for k, v in table[-1].items() if k != "relations"}), flush=True)
    (out / "probe.json").write_text(json.dumps(table, indent=2))
    lines = ["| KG | variant | seeds | P@1 (KG fused) | P@1 (fusion off at inference) |", "|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["kg"], r["variant"]) for r in table))
    for kg_name, variant in keys:
        rs = [r for r in table if (r["kg"], r["variant"]) == (kg_name, variant)]
        mean = lambda k: statistics.mean(r[k] for r in rs)  # noqa: E731
        lines.append(f"| {kg_name} | {variant} | {len(rs)} | {mean('p_at_1'):.3f} | "
                     f"{mean('p_at_1_no_kg_at_inference'):.3f} |")
    report = (f"# LAMA probe\n\nrelations {', '.join(relations)}; first {max_facts} test facts each; "
              f"{table[0]['facts'] if table else 0} single-token facts probed\n\n" + "\n".join(lines) + "\n")
    (out / "results.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
