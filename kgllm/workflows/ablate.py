"""``kgllm ablate``: every variant x seed with identical data and budget, then a table with uncertainty.

Each run is ``kgllm fit`` (the same LightningCLI) on the experiment config(s) plus the
variant's overrides and ``--seed_everything SEED``, followed by a test of its best checkpoint.
The datamodule takes its data order and masks from the seed alone, so all variants of a seed
see the same batches. ``results.csv`` gains a row per finished run (a re-started ablation
skips the runs it already has); ``results.md`` holds mean +- std per variant and a paired
t-test of each variant against ``none`` over the seeds (with controls, also each arm and its
controls against the arm's ``+matched`` form); ``results.png`` plots the main metric.

Variants (combine with ``+``, e.g. ``gated+shuffled_links``):

* ``none``, ``gated``, ``xattn``, ``interaction`` -- the fusion mechanism;
* ``shuffled_links`` -- mentions linked to random (fixed) other nodes;
* ``random_graph`` -- the KG rewired at random with the same degree sequence;
* ``text_features`` -- GAT node inputs from entity text only (no id embeddings);
* ``matched`` -- parameter-matched ``none``: the fusion blocks without graph input;
* ``lora`` / ``ia3`` / ``adapter`` / ``frozen`` -- parameter-efficient fine-tuning (LoRA r=8, IA3,
  Houlsby bottleneck adapters of size 8) or a frozen backbone; fusion blocks and heads trained.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Sequence

from kgllm.util.formatting import HelpFormatter
from kgllm.util.errors import KGLLMError
from kgllm.util.io import atomic_open, atomic_write_text

log = logging.getLogger(__name__)

#: controls and options that combine with a fusion variant (``gated+shuffled_links``)
CONTROLS: dict[str, list[str]] = {
    "shuffled_links": ["--data.control", "shuffled_links"],
    "random_graph": ["--data.control", "random_graph"],
    "no_edges": ["--data.control", "no_edges"],
    "text_features": ["--model.node_features", "text"],
    "text_norm_features": ["--model.node_features", "text_norm"],
    "matched": ["--model.graph_input", "false"],
    "lora": ["--model.peft", "lora"],
    "ia3": ["--model.peft", "ia3"],
    "adapter": ["--model.peft", "adapter"],
    "frozen": ["--model.freeze_backbone", "true"],
    "copy": ["--model.copy_head", "true", "--model.copy_fact_dropout", "0.25"],
    "lm_features": ["--model.node_features", "lm"],
    "relgate": ["--model.copy_gate_relation", "true"],
    "counterfactual": ["--model.copy_counterfactual", "1.0"],
}


def variants() -> dict[str, list[str]]:
    """Every variant name -> its config overrides: each registered fusion block (``none`` too) and
    the controls; a block registered with :func:`kgllm.nn.fusion.register_fusion` appears here."""
    from kgllm.nn.fusion import fusion_names

    return {**{name: ["--model.fusion", name] for name in fusion_names()}, **CONTROLS}


def variant_overrides(variant: str) -> list[str]:
    """The config overrides of an ablation variant (parts joined by ``+``, each a registered variant)."""
    out = []
    known = variants()
    for part in variant.split("+"):
        if part not in known:
            raise KGLLMError(f"unknown variant {part!r}; choose from {sorted(known)} (combine with '+')")
        out += known[part]
    return out


def setup_fingerprint(configs: Sequence[str], extra: Sequence[str]) -> str:
    """A name for what a run was made with: the config files' bytes and the command-line overrides
    (a resumed ablation refuses rows made with other settings; ``setup-<hash>.json`` in ``--out``
    says what each name stands for)."""
    import hashlib

    h = hashlib.sha256()
    for c in configs:
        h.update(Path(c).read_bytes() if Path(c).is_file() else str(c).encode())
        h.update(b"\0")
    h.update(json.dumps(list(extra)).encode())
    return "setup-" + h.hexdigest()[:16]


#: the controls ``kgllm ablate --controls`` adds for every variant that reads the graph
DEFAULT_CONTROLS = ("matched", "random_graph", "shuffled_links", "no_edges")


def with_controls(variants: Sequence[str]) -> list[str]:
    """``variants`` and, after each one that reads the graph (a fusion block or the copy head), that
    variant with each of :data:`DEFAULT_CONTROLS` (``matched`` only for fusion blocks: the copy head
    has no graph-free form; the parameter-matched reading of it is ``no_edges``)."""
    out = []
    for v in variants:
        out.append(v)
        parts = v.split("+")
        if parts[0] == "none" and "copy" not in parts:
            continue  # reads no graph
        for c in DEFAULT_CONTROLS:
            if c in parts or (c == "matched" and "copy" in parts):
                continue
            out.append(f"{v}+{c}")
    return list(dict.fromkeys(out))


def option_keys(args: Sequence[str]) -> set[str]:
    """The ``--section.key`` names set by command-line overrides (``--a.b v`` or ``--a.b=v``)."""
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


def run_one(configs: Sequence[str], variant: str, seed: int, out: Path, extra: Sequence[str]) -> dict:
    """Fit and test one variant x seed; returns its metrics and where its checkpoints are."""
    from kgllm.lit.runner import fit_and_test

    name = f"{variant}-seed{seed}"
    logger = json.dumps([{"class_path": "lightning.pytorch.loggers.CSVLogger",
                          "init_args": {"save_dir": str(out / "runs"), "name": name, "version": ""}}])
    args = [a for c in configs for a in ("--config", str(c))] + variant_overrides(variant) + [
        "--seed_everything", str(seed), "--trainer.logger", logger, "--trainer.default_root_dir",
        str(out / "runs" / name), *extra]
    run = fit_and_test(args)
    dm, trainer = run["cli"].datamodule, run["cli"].trainer
    trainable = sum(p.numel() for p in run["cli"].model.parameters() if p.requires_grad)
    return {"variant": variant, "seed": seed, "fit_seconds": round(run["fit_seconds"], 2), "best_ckpt": run["best_ckpt"],
            "train_examples": len(getattr(dm, "features", {}).get("train", [])), "epochs": run["epochs"],
            "steps": trainer.global_step, "trainable_params": trainable,
            "kg_source": kg_source(getattr(dm, "kg", None)), **run["metrics"]}


def kg_source(kg) -> str:
    """Which text (or imported files) the KG of a run was built from, for the results table."""
    return "-" if kg is None else _source_of(kg.meta)


def _source_of(meta: dict) -> str:
    """A KG's source from its ``meta.json``: a built KG's corpus, an import's files, or a merge's
    inputs (``kgllm kg-merge``, ``cross-fit-kg``), each named with its folder."""
    c = meta.get("corpus", {})
    if c.get("path"):
        docs = f", {c['documents']} documents" if c.get("documents") is not None else ""
        name = "/".join(Path(c["path"]).parts[-2:])
        return f"{name}{docs}{' (' + c['selection'] + ')' if c.get('selection') else ''}"
    if meta.get("merged"):
        return f"merged by {meta.get('merge_by', '?')}: " + "; ".join(_source_of(m) for m in meta["merged"])
    imported = meta.get("imported") or [{}]
    return "imported " + ", ".join(f"{i.get('format', '?')} ({len(i.get('files', []))} files)" for i in imported)


def read_rows(path: Path) -> list[dict]:
    """The rows of an ablation's ``results.csv`` (numbers parsed); none if the file is missing."""
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as fh:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _num(value: str):
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def write_rows(path: Path, rows: list[dict]) -> None:
    """All rows (the union of their fields) to ``path`` atomically, quoted by the ``csv`` module."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_open(path) as fh:
        writer = csv.DictWriter(fh, fields, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_test_items(run_dir: Path) -> dict[int, int | tuple[int, int, int]] | None:
    """A run's ``test_items.csv`` (test example index -> correct, or -> (correct, predicted, gold)
    counts where the file has them: document-level RE), or ``None`` without one."""
    path = Path(run_dir) / "test_items.csv"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows and "predicted" in rows[0]:
        return {int(r["idx"]): (int(r["correct"]), int(r["predicted"]), int(r["gold"])) for r in rows}
    return {int(r["idx"]): int(r["correct"]) for r in rows}


def summarise(rows: list[dict], metrics: Sequence[str], baseline: str = "none", items: dict | None = None) -> list[dict]:
    """Per variant and metric: mean, std and 95% t-interval over seeds; against ``baseline``, the mean
    paired difference (seeds are the pairs) with its 95% interval, the paired t-test p-value and the
    Holm-adjusted p-value over all variants compared in this table (``p_holm``). With per-run test
    ``items`` (``(variant, seed) -> {example: correct}``), also accuracy's interval by a bootstrap
    over seeds and test items, and its paired difference's (``entry["items"]``)."""
    from kgllm.util.stats import holm, item_intervals, mean_ci, paired

    by = {}
    for r in rows:
        by.setdefault(r["variant"], {})[r["seed"]] = r
    out = []
    for variant, seeds in by.items():
        entry = {"variant": variant, "runs": len(seeds)}
        for m in metrics:
            entry[m] = mean_ci([seeds[s][m] for s in sorted(seeds)])
            common = sorted(set(seeds) & set(by.get(baseline, {})))
            if variant != baseline and len(common) >= 2:
                entry[m].update(paired([seeds[s][m] for s in common], [by[baseline][s][m] for s in common]))
        if items:
            base = {s: items.get((baseline, s)) for s in by.get(baseline, {})} if variant != baseline else None
            entry["items"] = item_intervals({s: items.get((variant, s)) for s in seeds}, base)
        out.append(entry)
    for m in metrics:
        compared = [e[m] for e in out if "p" in e[m]]
        for e, p in zip(compared, holm([e["p"] for e in compared])):
            e["p_holm"] = p
    return out


def format_markdown(summary: list[dict], metrics: Sequence[str], baseline: str = "none") -> str:
    """The ablation summary as a Markdown table: mean ± std [95% CI] per metric, paired differences against ``baseline``."""
    from kgllm.util.stats import fmt_ci, fmt_p

    by_items = any(e.get("items") for e in summary)
    stat = next((e["items"].get("statistic", "accuracy") for e in summary if e.get("items")), "accuracy")
    head = ("| variant | runs | " + " | ".join(f"{m} (mean ± std [95% CI])" for m in metrics)
            + f" | Δ {metrics[0]} vs {baseline} [95% CI] (paired t-test p, Holm p) |"
            + (f" test {stat} 95% CI (seeds × test items) | Δ {stat} vs {baseline} (seeds × test items) |"
               if by_items else ""))
    lines = [head, "|" + "---|" * (3 + len(metrics) + (2 if by_items else 0))]
    for e in summary:
        cells = [f"{e[m]['mean']:.4f} ± {e[m]['std']:.4f} {fmt_ci(e[m]['ci'])}" for m in metrics]
        main = e[metrics[0]]
        delta = (f"{main['diff']:+.4f} (p={fmt_p(main['p'])}, Holm p={fmt_p(main['p_holm'])}, n={main['pairs']}) "
                 f"{fmt_ci(main['diff_ci'])}" if "diff" in main else "–")
        it = e.get("items") or {}
        tail = (f" {fmt_ci(it.get('ci'))} ({it['items']} items) | {fmt_ci(it.get('diff_ci'))} |" if it
                else " – | – |") if by_items else ""
        lines.append(f"| {e['variant']} | {e['runs']} | " + " | ".join(cells) + f" | {delta} |{tail}")
    return "\n".join(lines)


def control_tables(rows: list[dict], metrics: Sequence[str], items: dict | None = None) -> str:
    """For each arm run with its controls, the arm and its controls against the arm's graph-free
    form (``ARM+matched``; ``ARM+no_edges`` for the copy head, which has no ``matched``): the
    difference that is the graph's content rather than the extra parameters. Empty without controls."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    out = []
    for arm in variants:
        ref = next((f"{arm}+{c}" for c in ("matched", "no_edges") if f"{arm}+{c}" in variants), None)
        if ref is None:
            continue
        group = [arm] + [f"{arm}+{c}" for c in DEFAULT_CONTROLS if f"{arm}+{c}" in variants]
        summary = summarise([r for r in rows if r["variant"] in group], metrics, ref, items=items)
        what = "no graph input" if ref.endswith("+matched") else "its nodes without edges"
        out.append(f"## {arm} against {ref} (the same parameters, {what})\n\n"
                   f"{format_markdown(summary, metrics, ref)}\n")
    return "\n".join(out)


def data_seen(rows: list[dict]) -> str:
    """One line per variant: the KG's source text and the training examples x epochs the arm saw."""
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        r = next(x for x in rows if x["variant"] == variant)
        out.append(f"- {variant}: {r.get('train_examples', '?')} training examples x {r.get('epochs', '?')} epochs; "
                   f"KG from {r.get('kg_source', '?')}")
    return "\n".join(out)


def plot_figure(rows: list[dict], metrics: Sequence[str], summary: list[dict], title: str, baseline: str = "none"):
    """The ablation figure: one panel per metric; per variant the mean ± std (diamond) and each
    seed's value (dots), the same seed joined by a grey line across variants (the test is
    paired), and the paired-test p (Holm-corrected) against ``baseline`` under each variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kgllm.util.stats import fmt_p

    variants = list(dict.fromkeys(r["variant"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    by = {e["variant"]: e for e in summary}
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.0, 1.5 * len(variants) + 1.5) * len(metrics), 4.2),
                             squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for seed in seeds:  # same seed, same data order: the pairs of the test
            pts = [(i, r[metric]) for i, v in enumerate(variants) for r in rows if r["variant"] == v and r["seed"] == seed]
            if len(pts) > 1:
                ax.plot(*zip(*pts), color="0.75", linewidth=0.8, zorder=1)
        for i, v in enumerate(variants):
            vals = [r[metric] for r in rows if r["variant"] == v]
            mean = statistics.mean(vals)
            std = statistics.stdev(vals) if len(vals) > 1 else 0.0
            color = "tab:gray" if v == baseline else "tab:blue"
            ax.errorbar(i, mean, yerr=std, fmt="D", color=color, capsize=5, markersize=7, zorder=3)
            ax.scatter([i] * len(vals), vals, color="black", s=10, zorder=4)
            if v == baseline:
                ax.axhline(mean, color="tab:gray", linestyle="--", linewidth=1, zorder=0)
        labels = []
        for v in variants:
            e = by.get(v, {}).get(metric, {})
            if "p" in e:
                p, holm_p = fmt_p(e["p"]), fmt_p(e.get("p_holm", e["p"]))
                labels.append(f"{v}\np{'' if p.startswith('<') else '='}{p} (Holm {holm_p})")
            else:
                labels.append(v)
        ax.set_xticks(range(len(variants)), labels, fontsize=8)
        ax.set_xlim(-0.5, len(variants) - 0.5)
        ax.set_xlabel("variant (p: paired t-test vs " + baseline + ")")
        ax.set_ylabel(metric)
        ax.set_title(metric, fontsize=10)
    fig.suptitle(f"{title}: mean ± std over seeds {', '.join(map(str, seeds))} (dots: runs; lines: same seed)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot(rows: list[dict], metrics: Sequence[str], summary: list[dict], title: str, path: Path,
         baseline: str = "none") -> None:
    """Write the ablation figure (per-seed points, means and intervals per variant) to ``path``."""
    import matplotlib.pyplot as plt

    fig = plot_figure(rows, metrics, summary, title, baseline)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def eta(started: float, finished: int, total: int) -> str:
    """``", ETA 12 min"`` from the mean time of the runs finished so far (empty before the first)."""
    if not finished:
        return ""
    left = (time.perf_counter() - started) / finished * (total - finished)
    return f", ETA {left / 60:.0f} min" if left >= 60 else f", ETA {left:.0f} s"


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="kgllm ablate", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--config", action="append", required=True, help="experiment YAML (repeatable, merged in order)")
    p.add_argument("--variants", default="none,gated",
                   help="comma-separated variants: fusion names (none, gated, xattn, ...) and controls, combined with +")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds; every variant runs every seed")
    p.add_argument("--out", required=True, help="results folder")
    p.add_argument("--metrics", default=None, help="metrics for the table (default: every test/ metric)")
    p.add_argument("--controls", action="store_true",
                   help="also run every graph-reading variant with the controls matched (no graph input), "
                        "random_graph, shuffled_links and no_edges")
    a, extra = p.parse_known_args(argv)
    out = Path(a.out)
    variants = a.variants.split(",")
    if a.controls:
        variants = with_controls(variants)
    given = option_keys(extra)
    for v in variants:
        clash = sorted(option_keys(variant_overrides(v)) & given)  # fail early on a typo, before --out exists
        if clash:
            log.warning("variant %s: %s from the command line replaces the variant's own setting", v, ", ".join(clash))
    setup = setup_fingerprint(a.config, extra)
    rows = read_rows(out / "results.csv")
    stale = [r for r in rows if r["variant"] in variants and r.get("setup") != setup]
    if stale:
        names = ", ".join(f"{r['variant']} seed {r['seed']}" for r in stale[:6]) + (" ..." if len(stale) > 6 else "")
        legacy = any(not r.get("setup") for r in stale)
        raise KGLLMError(f"{out / 'results.csv'}: {names} ran with other settings (config files or command-line "
                         f"overrides differ{'; or recorded before kgllm kept them' if legacy else ''}): use another "
                         "--out, or delete those rows to rerun them")
    out.mkdir(parents=True, exist_ok=True)
    from kgllm.util.io import atomic_write_json

    atomic_write_json(out / f"{setup}.json", {"configs": [str(c) for c in a.config], "overrides": list(extra)})
    done = {(r["variant"], int(r["seed"])) for r in rows}
    todo = [(v, seed) for seed in (int(s) for s in a.seeds.split(",")) for v in variants]
    for variant, seed in todo:
        if (variant, seed) in done:
            log.info("skipping %s seed %d: already in results.csv", variant, seed)
    todo = [t for t in todo if t not in done]
    started = time.perf_counter()
    for k, (variant, seed) in enumerate(todo, 1):
        print(f"ablate: run {k} of {len(todo)}: {variant} seed {seed}{eta(started, k - 1, len(todo))}", flush=True)
        rows.append({**run_one(a.config, variant, seed, out, extra), "setup": setup})
        write_rows(out / "results.csv", rows)
        print(f"ablate: finished {variant} seed {seed} in {rows[-1].get('fit_seconds', float('nan')):.0f} s "
              f"({', '.join(f'{m} {float(v):.4g}' for m, v in rows[-1].items() if m.startswith('test/') and v not in ('', None))})",
              flush=True)
    rows = [r for r in rows if r["variant"] in variants]
    def reported(value) -> bool:  # read back from results.csv, a metric the run did not log is ""
        return value not in ("", None) and not math.isnan(float(value))

    metrics = a.metrics.split(",") if a.metrics else sorted(k for k in rows[0] if k.startswith("test/")
                                                            and reported(rows[0][k]))
    items = {(r["variant"], r["seed"]): read_test_items(out / "runs" / f"{r['variant']}-seed{r['seed']}") for r in rows}
    reference = "none" if "none" in variants else variants[0]
    summary = summarise(rows, metrics, reference, items=items)
    table = format_markdown(summary, metrics, reference)
    seeds = sorted({r["seed"] for r in rows})
    sections = [f"# Ablation\n\nconfigs: {', '.join(a.config)}; seeds: {seeds}; extra overrides: {' '.join(extra) or '-'}\n",
                f"{table}\n", control_tables(rows, metrics, items), f"Data seen by each arm:\n{data_seen(rows)}\n"]
    report = "\n".join(x for x in sections if x)
    atomic_write_text(out / "results.md", report)
    title = " + ".join(Path(c).stem for c in a.config)
    plot(rows, metrics[:4], summary, title, out / "results.png", reference)
    print(report)
    return 0
