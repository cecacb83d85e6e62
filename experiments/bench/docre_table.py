"""The README's document-level relation extraction table: arms from several ``kgllm ablate`` folders
(e.g. ``none`` and ``gated`` in one, the distant-supervision run in another), matched by seed.

Each arm is ``LABEL=FOLDER:VARIANT`` (``results.csv`` of ``kgllm ablate``); the first arm is the
reference. Per arm: runs, test F1 / Ign F1 / precision / recall as mean +- std [95% t-interval],
and the paired difference to the reference over the seeds both have (t-interval, paired t-test).
Where every run of the arms wrote ``test_items.csv`` (each test document's correct, predicted and
gold triples), F1's interval and the difference's over seeds and test documents as well (a paired
bootstrap that re-pools the counts: :func:`kgllm.util.stats.bootstrap_seeds_items`).
Seeds missing from an arm are said, never filled in. ``--plot`` draws test F1 per arm, each seed's
runs joined by a grey line (the comparison is paired), the mean with its 95% interval (over seeds ×
test documents where the counts exist, else the t-interval over seeds).

Run:  python experiments/bench/docre_table.py \\
          "no fusion=results/docre_bf16:none" "gated, learned KG=results/docre_bf16:gated" \\
          "+ distant supervision=results/docre_distant:none" [--out results/docre_table.md] [--plot f1.png]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

METRICS = ("test/f1", "test/ign_f1", "test/precision", "test/recall")


def read_arm(spec: str) -> tuple[str, dict[int, dict[str, float]], dict[int, dict] | None]:
    """An arm's label, its runs' test metrics by seed, and their per-document counts by seed (``None``
    unless every run has them)."""
    from kgllm.workflows.ablate import read_test_items

    label, sep, rest = spec.partition("=")
    folder, sep2, variant = rest.rpartition(":")
    if not (sep and sep2 and label and folder and variant):
        raise SystemExit(f"docre_table: arm {spec!r} is not LABEL=FOLDER:VARIANT")
    path = Path(folder) / "results.csv"
    if not path.is_file():
        raise SystemExit(f"docre_table: {path}: not found (run kgllm ablate first)")
    runs = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("variant") != variant:
                continue
            try:
                runs[int(row["seed"])] = {m: float(row[m]) for m in METRICS}
            except (KeyError, ValueError) as exc:
                raise SystemExit(f"docre_table: {path}: run {variant} seed {row.get('seed')}: no {exc}") from None
    if not runs:
        raise SystemExit(f"docre_table: {path}: no finished run of variant {variant!r}")
    items = {s: read_test_items(Path(folder) / "runs" / f"{variant}-seed{s}") for s in runs}
    return label, runs, (items if all(items.values()) else None)


def table(arms: list[tuple[str, dict]]) -> str:
    from kgllm.util.stats import fmt_ci, fmt_p, item_intervals, mean_ci, paired

    by_items = all(a[2] for a in arms)
    head = ["arm", "runs (seeds)", *[m.removeprefix("test/") for m in METRICS], "Δ F1 vs first [95% CI] (p)",
            "Δ Ign F1 vs first [95% CI] (p)"]
    if by_items:
        head += ["F1 95% CI (seeds × test documents)", "Δ F1 vs first (seeds × test documents)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ref, ref_items = arms[0][1], arms[0][2]
    for i, (label, runs, items) in enumerate(arms):
        seeds = sorted(runs)
        cells = [label, f"{len(seeds)} ({','.join(map(str, seeds))})"]
        for m in METRICS:
            s = mean_ci([runs[k][m] for k in seeds])
            cells.append(f"{s['mean']:.4f} ± {s['std']:.4f} {fmt_ci(s['ci'])}")
        for m in ("test/f1", "test/ign_f1"):
            common = sorted(set(seeds) & set(ref))
            if i == 0 or len(common) < 2:
                cells.append("–")
                continue
            d = paired([runs[k][m] for k in common], [ref[k][m] for k in common])
            cells.append(f"{d['diff']:+.4f} {fmt_ci(d['diff_ci'])} (p = {fmt_p(d['p'])})")
        if by_items:
            it = item_intervals(items, None if i == 0 else ref_items) or {}
            cells += [f"{fmt_ci(it.get('ci'))} ({it.get('items', 0)} documents)", fmt_ci(it.get("diff_ci"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(arms: list[tuple[str, dict, dict | None]], path: str) -> None:
    """Test F1 per arm (:func:`kgllm.workflows.knowledge.protocol.plot`): each seed's runs joined, the
    mean and its 95% interval over seeds × test documents where every run has its counts (centred on
    the bootstrap's own statistic: F1 re-pooled from the counts), else the t-interval over seeds."""
    from kgllm.util.stats import item_intervals, micro_f1
    from kgllm.workflows.knowledge.protocol import plot as seed_plot

    rows = [{"arm": label, "seed": s, "f1": r["test/f1"]} for label, runs, _ in arms for s, r in runs.items()]
    intervals = None
    if all(a[2] for a in arms):
        intervals = {label: (sum(micro_f1([sum(c[k] for c in items[s].values()) for k in range(3)]) for s in items)
                             / len(items), item_intervals(items)["ci"]) for label, _, items in arms}
    seed_plot(rows, path, key="f1", title="DocRE test F1" + (" (interval over seeds × test documents)" if intervals else ""),
              ylabel="test F1 (micro, relation triples)", intervals=intervals, reference=arms[0][0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arms", nargs="+", help="LABEL=FOLDER:VARIANT; the first is the reference")
    p.add_argument("--out", default=None, help="also write the table to this markdown file")
    p.add_argument("--plot", default=None, help="also draw test F1 per arm to this image (.png)")
    a = p.parse_args(argv)
    arms = [read_arm(s) for s in a.arms]
    text = table(arms)
    print(text, end="")
    if a.plot:
        plot(arms, a.plot)
    if a.out:
        from kgllm.util.io import atomic_write_text

        atomic_write_text(a.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
