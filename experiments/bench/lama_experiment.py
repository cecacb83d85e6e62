"""The LAMA knowledge-injection experiment on facts the model never read (KG-only facts).

1. The probed facts (the first ``max_facts`` T-REx test facts of each relation in
   ``pretrain_lama.yaml``) are split, seeded and disjoint, into *text facts* and *KG-only facts*
   (``kgllm.kg.lama.split_facts``): MLM trains on the text facts' evidence sentences only, and a
   KG-only draw whose pair or labels still occur in that text is excluded from probing.
2. Two KGs: ``lama_all`` holds every probed fact plus, as distractors, all T-REx train/dev facts of
   all 41 relations (the answer is rarely the subject's only neighbour); ``lama_no_kgonly`` is
   the same without the KG-only facts' edges.
3. ``kgllm ablate`` trains each variant x seed on the same text, order and budget; ``none`` runs once.
   Fused variants also run on ``lama_no_kgonly`` (the knowledge must then vanish).
4. ``kgllm probe`` of each best checkpoint: P@1 on KG-only facts (the headline) and on text facts,
   with the KG fused and with fusion switched off at inference, and by subject degree.

``results.md`` gives mean +- std and the 95% t-interval over seeds per arm, and the paired
difference against ``none`` (paired t-test, Holm-corrected over the arms).

Run:  KGLLM_DATA=../shared/data python experiments/bench/lama_experiment.py [--variants none,gated,xattn]
      [--seeds 0,1,2,3,4] [--node-features id|text|both] [--num-hops 1|2] [--out results/lama]
      [extra overrides for kgllm ablate, e.g. --trainer.max_epochs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "pretrain_lama.yaml"


def build_kgs(data_dir, probed: list, kg_only: list, out: Path) -> tuple[Path, Path]:
    """The KG with every probed fact and the distractors, and the same without the KG-only facts."""
    from kgllm.kg.imports import import_lama
    from kgllm.kg.store import KnowledgeGraph
    from kgllm.paths import dataset_file

    folder = dataset_file("lama_trex", "relations.jsonl", root=data_dir).parent
    full_dir, held_dir = out / "lama_all", out / "lama_no_kgonly"
    if full_dir.exists() and held_dir.exists():
        return full_dir, held_dir
    kg = import_lama(folder, splits=("train", "dev"))
    for f in probed:
        h = kg.add_entity(f.sub_key, f.sub_label, "ENT", sources=("wd",))
        t = kg.add_entity(f.obj_key, f.obj_label, "ENT", sources=("wd",))
        kg.add_edge(h, f.relation, t, (*f.source, -1, -1, 1.0))
    kg.meta["probe_facts"] = {"probed": len(probed), "kg_only": len(kg_only)}
    removed = {(f.sub_key, f.relation, f.obj_key) for f in kg_only}
    held = KnowledgeGraph(dict(kg.meta, kg_only_edges_removed=len(removed)))
    for e in kg.entities:  # same entity ids in both KGs
        held.add_entity(e.key, e.label, e.etype, e.aliases, e.count, e.sources)
    for (h, r, t), edge in kg.edges.items():
        if (kg.entities[h].key, kg.relations[r], kg.entities[t].key) not in removed:
            for prov in edge.provenance:
                held.add_edge(h, kg.relations[r], t, prov, prov[4])
    kg.save(full_dir)
    held.save(held_dir)
    return full_dir, held_dir


def summary_table(table: list[dict], keys: list[str]) -> str:
    """Mean +- std [95% CI] per arm, paired difference against ``none`` with Holm-corrected p."""
    from kgllm.stats import fmt_ci, holm, mean_ci, paired

    arms = list(dict.fromkeys(r["arm"] for r in table))
    base = {r["seed"]: r for r in table if r["arm"] == "none"}
    lines = ["| arm | seeds | " + " | ".join(keys) + f" | Δ {keys[0]} vs none (p, Holm p) |",
             "|" + "---|" * (3 + len(keys))]
    rows, ps = [], []
    for arm in arms:
        rs = sorted((r for r in table if r["arm"] == arm), key=lambda r: r["seed"])
        cells = []
        for k in keys:
            s = mean_ci([r[k] for r in rs])
            cells.append(f"{s['mean']:.3f} ± {s['std']:.3f} {fmt_ci(s['ci'], 3)}")
        common = [r for r in rs if r["seed"] in base]
        cmp = (paired([r[keys[0]] for r in common], [r["none_" + keys[0]] for r in common])
               if arm != "none" and len(common) >= 2 else None)
        rows.append((arm, len(rs), cells, cmp))
        if cmp:
            ps.append(cmp["p"])
    adjusted = iter(holm(ps))
    for arm, n, cells, cmp in rows:
        delta = (f"{cmp['diff']:+.3f} {fmt_ci(cmp['diff_ci'], 3)} (p={cmp['p']:.3f}, Holm p={next(adjusted):.3f})"
                 if cmp else "–")
        lines.append(f"| {arm} | {n} | " + " | ".join(cells) + f" | {delta} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from kgllm.ablate import main as ablate, read_rows
    from kgllm.data.datasets import lama_facts
    from kgllm.kg.lama import split_facts
    from kgllm.probe import default_source, probe

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="none,gated,xattn,interaction")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--node-features", default="id", choices=("id", "text", "both"))
    p.add_argument("--num-hops", type=int, default=1, help="subgraph depth at probe time")
    p.add_argument("--out", default="results/lama")
    p.add_argument("--graphs", default="graphs")
    p.add_argument("--data-dir", default=None)
    a, extra = p.parse_known_args(argv)
    extra = [x for x in extra if x != "--"]
    args = yaml.safe_load(CONFIG.read_text())["data"]["init_args"]["dataset_args"]
    relations, max_facts = args["relations"], args["max_facts"]
    fraction, split_seed = args["kg_only_fraction"], args.get("split_seed", 0)
    facts = lama_facts(a.data_dir, relations, max_facts)
    split = split_facts(facts, fraction, split_seed)
    full, held = build_kgs(a.data_dir, facts, split.kg_only, Path(a.graphs))
    out = Path(a.out) / a.node_features
    variants = a.variants.split(",")
    common = ["--seeds", a.seeds, "--model.node_features", a.node_features, *extra]
    if a.data_dir:
        common += ["--data.data_dir", a.data_dir]
    groups = {"kg_only": split.kg_only, "text": split.text}
    table = []
    for kg, tag in ((full, ""), (held, " (KG-only facts removed)")):
        runs = variants if kg == full else [v for v in variants if v != "none"]
        if not runs:
            continue
        ablate(["--config", str(CONFIG), "--variants", ",".join(runs), "--out", str(out / kg.name),
                "--data.kg_dir", str(kg), *common])
        for row in read_rows(out / kg.name / "results.csv"):
            if row["variant"] not in runs:
                continue
            res = probe(row["best_ckpt"], default_source(a.data_dir), facts=facts, groups=groups, kg_dir=str(kg),
                        num_hops=a.num_hops)
            for fused, key in ((True, "with_kg"), (False, "without_kg")):
                if row["variant"] == "none" and not fused:
                    continue
                arm = row["variant"] + tag + ("" if fused or row["variant"] == "none" else ", fusion off at inference")
                g = res[key]["groups"]
                table.append({"arm": arm, "seed": row["seed"], "kg_only_p_at_1": g["kg_only"]["p_at_1_micro"],
                              "text_p_at_1": g["text"]["p_at_1_micro"], "by_degree": res[key]["by_degree"],
                              "kg_only_facts": g["kg_only"]["facts"], "text_facts": g["text"]["facts"]})
                print(json.dumps({k: v for k, v in table[-1].items() if k != "by_degree"}), flush=True)
    base = {r["seed"]: r for r in table if r["arm"] == "none"}
    for r in table:  # the baseline's values beside every row, for the paired comparison
        for k in ("kg_only_p_at_1", "text_p_at_1"):
            r["none_" + k] = base[r["seed"]][k] if r["seed"] in base else float("nan")
    (out / "probe.json").write_text(json.dumps(table, indent=2))
    first = table[0] if table else {"kg_only_facts": 0, "text_facts": 0}
    report = (f"# LAMA probe on KG-only facts ({a.node_features} node features, {a.num_hops}-hop subgraphs)\n\n"
              f"relations {', '.join(relations)}; first {max_facts} test facts each; split seed {split_seed}: "
              f"{len(split.text)} text facts (their {len(split.training_sentences())} evidence sentences are the "
              f"MLM training text), {len(split.kg_only)} KG-only facts, {len(split.excluded)} excluded (pair or "
              f"labels in the training text); probed (single-token objects): {first['kg_only_facts']} KG-only, "
              f"{first['text_facts']} text. Every arm trains on the same sentences, order and budget.\n\n"
              + summary_table(table, ["kg_only_p_at_1", "text_p_at_1"]) + "\n")
    (out / "results.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
