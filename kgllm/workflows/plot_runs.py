"""``kgllm plot RUN_DIR... --out curves.png``: loss and metric curves of one or more runs, overlaid.

Reads each run folder's ``metrics.csv`` (the CSV logger's; a folder holding several runs, such as
``kgllm ablate``'s ``runs/``, contributes each of them). One panel per metric: the training loss
by step, then every validation metric by step (the value logged at the end of each validation),
or the metrics given with ``--metrics``. Each run is one line, named by its folder.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Sequence

from kgllm.util.formatting import HelpFormatter
from kgllm.util.errors import KGLLMError


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders (each holding ``metrics.csv``) under ``paths``, in the order given, then by name;
    evaluation folders inside a run (``RUN/test-<time>``) are not runs."""
    runs = []
    for path in map(Path, paths):
        if (path / "metrics.csv").is_file():
            runs.append(path)
            continue
        found = sorted({p.parent for p in path.rglob("metrics.csv")}) if path.is_dir() else []
        # a test/validate of a run's checkpoint logs into a sub-folder of that run: not a run of its own
        found = [f for f in found if not any(a in found for a in f.parents)]
        if not found:
            raise KGLLMError(f"{path}: no metrics.csv here or below (a run folder of kgllm fit or kgllm ablate)")
        runs += found
    return runs


def read_curves(run: Path) -> dict[str, list[tuple[float, float]]]:
    """``metric -> [(step, value)]`` from a run's ``metrics.csv`` (empty cells skipped)."""
    curves: dict[str, list[tuple[float, float]]] = {}
    with open(run / "metrics.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            step = row.get("step")
            if step in (None, ""):
                continue
            for key, value in row.items():
                if key in ("step", "epoch") or value in (None, ""):
                    continue
                try:
                    curves.setdefault(key, []).append((float(step), float(value)))
                except ValueError:
                    continue
    return curves


def default_metrics(curves: list[dict]) -> list[str]:
    """The curves drawn by default: the training loss and every validation metric."""
    keys = sorted({k for c in curves for k in c})
    train = [k for k in ("train/loss_step", "train/loss") if k in keys][:1]
    val = [k for k in keys if k.startswith("val/")]
    return train + val


def curves_figure(runs: list[Path], metrics: Sequence[str] | None = None, title: str | None = None):
    """Training and validation curves of ``runs``, overlaid, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [read_curves(r) for r in runs]
    metrics = list(metrics or default_metrics(data))
    if not metrics:
        raise KGLLMError(f"{runs[0]}: metrics.csv holds no training or validation metrics yet")
    cols = min(len(metrics), 3)
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    names = [r.name if len({x.name for x in runs}) == len(runs) else f"{r.parent.name}/{r.name}" for r in runs]
    for ax, metric in zip(axes.flat, metrics):
        for name, curve in zip(names, data):
            pts = curve.get(metric, [])
            if pts:
                ax.plot(*zip(*pts), marker="o" if len(pts) < 30 else None, markersize=3, linewidth=1.2, label=name)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(metric.split("/", 1)[-1])
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.suptitle(title or f"{len(runs)} run(s): training and validation curves", fontsize=11)
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 0.95))
    return fig


def main(argv: Sequence[str]) -> int:
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(prog="kgllm plot", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (or folders holding runs, e.g. an ablation's runs/)")
    p.add_argument("--out", default="curves.png", help="PNG to write (default %(default)s)")
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: training loss and "
                   "every val/ metric)")
    p.add_argument("--title", default=None, help="figure title (default: the runs' folder)")
    a = p.parse_args(argv)
    runs = find_runs(a.runs)
    fig = curves_figure(runs, a.metrics.split(",") if a.metrics else None, a.title)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=120)
    plt.close(fig)
    print(f"wrote {a.out} ({len(runs)} runs)")
    return 0
