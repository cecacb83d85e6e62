"""Per-class scores and a confusion matrix of a single-label classification test (written into the
run folder by :class:`~kgllm.lit.ClassifierModule`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import torch

from kgllm.util.io import atomic_open, atomic_write_text


def per_class(cm: torch.Tensor, labels: Sequence[str]) -> list[dict]:
    """One row per class of the confusion matrix ``cm`` (rows: true class, columns: predicted):
    support, predictions, precision, recall and F1 (0 where undefined); ``name``: a Wikidata
    property's label when the class is one (``P19`` -> ``place of birth``), else empty."""
    from kgllm.kg.graph.wikidata import relation_label

    cm = cm.double()
    tp, support, predicted = cm.diag(), cm.sum(1), cm.sum(0)
    rows = []
    for i, name in enumerate(labels):
        p = float(tp[i] / predicted[i]) if predicted[i] else 0.0
        r = float(tp[i] / support[i]) if support[i] else 0.0
        rows.append({"label": name, "name": relation_label(name) or "", "support": int(support[i]), "predicted": int(predicted[i]),
                     "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0})
    return rows


def confusion_figure(cm: torch.Tensor, labels: Sequence[str], title: str, max_classes: int = 30):
    """Row-normalised confusion matrix (each true class's share of predictions), counts written in the
    cells up to 15 classes; above ``max_classes`` the most frequent true classes are shown and the
    title says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = cm.double()
    keep = list(range(len(labels)))
    if len(keep) > max_classes:
        keep = sorted(cm.sum(1).argsort(descending=True)[:max_classes].tolist())
        title += f" ({max_classes} most frequent of {len(labels)} classes)"
    sub = cm[keep][:, keep]
    share = sub / cm[keep].sum(1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.35 * len(keep) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1)
    from kgllm.kg.graph.wikidata import with_label

    shown = [with_label(labels[i]) for i in keep]
    names = [n if len(n) <= 30 else n[:29] + "…" for n in shown]
    ax.set_xticks(range(len(keep)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(keep)), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    if len(keep) <= 15:
        for r in range(len(keep)):
            for c in range(len(keep)):
                if sub[r, c]:
                    ax.text(c, r, f"{int(sub[r, c])}", ha="center", va="center", fontsize=8,
                            color="white" if share[r, c] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    return fig


def write_report(cm: torch.Tensor, labels: Sequence[str], out_dir: str | Path, title: str) -> list[Path]:
    """``per_class.csv``, ``confusion_matrix.csv`` and ``confusion_matrix.png`` in ``out_dir``, each
    written atomically; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = per_class(cm, labels)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_text(out / "per_class.csv", buf.getvalue())
    buf = io.StringIO()
    csv.writer(buf).writerows([["true \\ predicted", *labels],
                               *([name, *map(int, cm[i].tolist())] for i, name in enumerate(labels))])
    atomic_write_text(out / "confusion_matrix.csv", buf.getvalue())
    fig = confusion_figure(cm, labels, title)
    with atomic_open(out / "confusion_matrix.png", "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return [out / "per_class.csv", out / "confusion_matrix.csv", out / "confusion_matrix.png"]
