"""Dynamic knowledge, measured: does a fused model use facts added to its KG after training?

The LAMA protocol of :mod:`kgllm.workflows.knowledge.protocol` (KG-only facts never appear in the MLM
training text), in time order:

1. a fused model (``variant``, seeds) is trained on ``lama_no_kgonly``: the KG without the
   KG-only facts; ``none`` is trained on the same text;
2. the KG-only facts are added to a copy of that KG with :func:`kgllm.kg.extraction.update.import_into`
   (``kg-import lama FILE --into``), timed, and the result is compared with ``lama_all`` by
   :func:`kgllm.kg.graph.diff.diff_kgs`;
3. each checkpoint is probed on the old KG (before), on the updated KG with no retraining (after),
   with fusion off, and after ``continue_epochs`` of continued MLM pretraining on the same text
   with the updated KG (``init_from``; ``none`` gets the same extra epochs);
4. forgetting: of the probed facts a checkpoint answered correctly before the update, the share
   it still answers after.

``results.md`` gives mean +- std [95% CI] over seeds and paired differences against ``none``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Sequence


def write_lama_facts(facts: list, path: Path) -> Path:
    """Facts as a T-REx-style LAMA JSON-lines file (ids, labels, relation) for ``kg-import lama``."""
    with open(path, "w", encoding="utf-8") as fh:
        for f in facts:
            fh.write(json.dumps({"sub_uri": f.sub_key.removeprefix("wd:"), "obj_uri": f.obj_key.removeprefix("wd:"),
                                 "sub_label": f.sub_label, "obj_label": f.obj_label,
                                 "predicate_id": f.relation}) + "\n")
    return path


def updated_kg(held: Path, full: Path, kg_only: list, out: Path) -> dict:
    """Copy ``held`` to ``out/lama_updated`` and add the KG-only facts as an update; returns timing
    and the differences from ``full`` (rebuilt only if ``out/lama_updated`` is not already that)."""
    from kgllm.util.errors import KGLLMError
    from kgllm.kg.graph.diff import diff_folders
    from kgllm.kg.graph.folder import read_meta
    from kgllm.kg.sources.imports import import_lama
    from kgllm.kg.extraction.update import import_into

    target = out / "lama_updated"
    facts_file = write_lama_facts(kg_only, out / "kg_only_facts.jsonl")
    if target.exists():
        meta = read_meta(target)
        if meta.get("probe_facts") != read_meta(held).get("probe_facts") or not meta.get("updates"):
            raise KGLLMError(f"{target}: not an update of {held} for this split; remove it first")
        seconds = meta.get("update_seconds")
    else:
        tmp = out / ".lama_updated.copy"
        shutil.rmtree(tmp, ignore_errors=True)  # our own staging folder
        shutil.copytree(held, tmp)
        start = time.perf_counter()
        import_into(tmp, import_lama(facts_file), "kg_only")
        seconds = round(time.perf_counter() - start, 2)
        meta_path = tmp / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta["update_seconds"] = seconds
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        tmp.rename(target)
    diff = diff_folders(target, full, ignore=("sources", "provenance", "counts", "triple_counts"))
    return {"kg": target, "update_seconds": seconds, "diff_vs_full": diff}


def run_update_experiment(config: Path, seeds: str, out: Path, graphs: Path, data_dir=None, variant: str = "xattn",
                          node_features: str = "id", runs: Path | None = None, continue_epochs: int = 1,
                          extra: Sequence[str] = ()) -> tuple[list[dict], str]:
    """The LAMA update experiment: add the KG-only facts to each trained model's KG by one update and probe before, after, and after continued pretraining; returns the rows and the report."""
    import yaml

    from kgllm.data.datasets import lama_facts
    from kgllm.kg.sources.lama import split_facts
    from kgllm.util.stats import fmt_ci, mean_ci
    from kgllm.workflows.ablate import main as ablate, read_rows
    from kgllm.workflows.knowledge.protocol import build_kgs, summary_table
    from kgllm.workflows.knowledge.probe import default_source, probe

    args = yaml.safe_load(Path(config).read_text())["data"]["init_args"]["dataset_args"]
    facts = lama_facts(data_dir, args["relations"], args["max_facts"])
    split = split_facts(facts, args["kg_only_fraction"], args.get("split_seed", 0))
    full, held = build_kgs(data_dir, facts, split.kg_only, Path(graphs))
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(runs or out / "runs")
    common = ["--model.node_features", node_features, *extra] + (["--data.data_dir", str(data_dir)] if data_dir else [])
    wanted = [int(s) for s in seeds.split(",")]
    for arm, kg in ((variant, held), ("none", full)):  # train only what the runs folder lacks
        have = {int(r["seed"]) for r in read_rows(runs / kg.name / "results.csv") if r["variant"] == arm}
        missing = [s for s in wanted if s not in have]
        if missing:
            ablate(["--config", str(config), "--variants", arm, "--seeds", ",".join(map(str, missing)),
                    "--out", str(runs / kg.name), "--data.kg_dir", str(kg), *common])
    upd = updated_kg(held, full, split.kg_only, out)
    ckpts = {(arm, int(r["seed"])): r["best_ckpt"] for arm, folder in ((variant, held), ("none", full))
             for r in read_rows(runs / folder.name / "results.csv") if r["variant"] == arm}
    groups = {"kg_only": split.kg_only, "text": split.text}
    source = default_source(data_dir)
    table = []

    def row(arm: str, seed: int, res: dict, before_hits: list | None) -> dict:
        g = res["groups"]
        r = {"arm": arm, "seed": seed, "kg_only_p_at_1": g["kg_only"]["p_at_1_micro"],
             "text_p_at_1": g["text"]["p_at_1_micro"], "kg_only_facts": g["kg_only"]["facts"]}
        if before_hits is not None:
            known = [i for i, h in enumerate(before_hits) if h]
            r["retained"] = sum(res["hits"][i] for i in known) / len(known) if known else float("nan")
            r["known_before"] = len(known)
        table.append(r)
        print(json.dumps(r), flush=True)
        return r

    for seed in (int(s) for s in seeds.split(",")):
        fused, base = ckpts[(variant, seed)], ckpts[("none", seed)]
        none_before = probe(base, source, facts=facts, groups=groups, kg_dir=str(full))["without_kg"]
        row("none", seed, none_before, none_before["hits"])
        before = probe(fused, source, facts=facts, groups=groups, kg_dir=str(held))
        row(f"{variant}, old KG (before the update)", seed, before["with_kg"], before["with_kg"]["hits"])
        row(f"{variant}, fusion off", seed, before["without_kg"], before["with_kg"]["hits"])
        after = probe(fused, source, facts=facts, groups=groups, kg_dir=str(upd["kg"]))
        row(f"{variant}, updated KG, no retraining", seed, after["with_kg"], before["with_kg"]["hits"])
        for arm, ckpt, kg, hits in ((variant, fused, upd["kg"], before["with_kg"]["hits"]),
                                    ("none", base, full, none_before["hits"])):
            cont = out / "continued" / arm / f"seed{seed}"  # each seed continues from its own checkpoint
            ablate(["--config", str(config), "--variants", arm, "--seeds", str(seed), "--out", str(cont),
                    "--data.kg_dir", str(kg), "--model.init_from", str(ckpt),
                    "--trainer.max_epochs", str(continue_epochs), *common])
            new = next(r["best_ckpt"] for r in read_rows(cont / "results.csv") if int(r["seed"]) == seed)
            res = probe(new, source, facts=facts, groups=groups, kg_dir=str(kg))
            label = (f"{variant}, updated KG + {continue_epochs} epoch(s) continued pretraining" if arm == variant
                     else f"none + {continue_epochs} epoch(s) continued pretraining")
            row(label, seed, res["with_kg" if arm == variant else "without_kg"], hits)
    base_of = {r["seed"]: r for r in table if r["arm"] == "none"}
    for r in table:
        for k in ("kg_only_p_at_1", "text_p_at_1"):
            r["none_" + k] = base_of[r["seed"]][k]
    (out / "probe.json").write_text(json.dumps({"update": {**upd, "kg": str(upd["kg"])}, "rows": table}, indent=2))
    retained = []
    for arm in dict.fromkeys(r["arm"] for r in table):
        if arm == "none" or "fusion off" in arm or "before" in arm:
            continue
        rs = [r for r in table if r["arm"] == arm and "retained" in r]
        vals = [r["retained"] for r in rs if r["retained"] == r["retained"]]  # NaN: it knew nothing before
        known = sum(r["known_before"] for r in rs)
        if len(vals) >= 2:
            s = mean_ci(vals)
            retained.append(f"| {arm} | {s['mean']:.3f} ± {s['std']:.3f} {fmt_ci(s['ci'], 3)} | {known} |")
        else:
            retained.append(f"| {arm} | {vals[0]:.3f} (one seed) | {known} |" if vals else f"| {arm} | – | {known} |")
    report = (f"# Dynamic knowledge: KG-only LAMA facts added to the KG after training ({node_features} node "
              f"features)\n\n{len(split.kg_only)} KG-only facts added by one update in {upd['update_seconds']} s; "
              f"the updated KG differs from lama_all in: {', '.join(upd['diff_vs_full']) or 'nothing'} "
              "(sources, provenance rows and counts not compared: the facts came from another file).\n\n"
              + summary_table(table, ["kg_only_p_at_1", "text_p_at_1"])
              + "\n\nForgetting: share of the facts each checkpoint answered before the update that it still "
                "answers\n\n| arm | retained (mean ± std [95% CI]) | facts known before (all seeds) |\n|---|---|---|\n" + "\n".join(retained) + "\n")
    (out / "results.md").write_text(report)
    return table, report
