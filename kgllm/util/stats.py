"""Uncertainty for results tables: means with t-intervals, paired tests, Holm correction.

Seeds are the unit of replication: a variant's runs are independent draws, and two variants run
with the same seed see the same data order, so they are compared pairwise (paired t-test on the
per-seed differences). When one table compares several variants against the same baseline, the
p-values are adjusted with Holm's step-down method (``scipy.stats.false_discovery_control`` covers
only FDR methods, so the few lines are here).
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict:
    """``mean``, sample ``std``, ``n`` and the two-sided t-interval ``ci`` = (low, high) of the mean
    (``None`` with fewer than two values)."""
    from scipy import stats

    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    ci = None
    if n > 1:
        half = stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n)
        ci = (mean - half, mean + half)
    return {"mean": mean, "std": std, "n": n, "ci": ci}


def paired(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict:
    r"""Mean difference ``a - b`` over pairs, its t-interval and the two-sided paired t-test p-value.

    With no spread in the differences the t-test is undefined: ``p`` is 1.0 when they are all
    zero (identical runs), and otherwise the exact two-sided sign test's, :math:`2 \cdot 2^{-n}`
    for :math:`n` pairs that all moved the same way (0.0625 for five seeds, not 0: a constant
    difference over few seeds is not certainty).
    """
    from scipy import stats

    if len(a) != len(b) or len(a) < 2:
        raise ValueError("a paired comparison needs two equally long lists of at least 2 values")
    diff = [x - y for x, y in zip(a, b)]
    out = mean_ci(diff, level)
    if max(diff) - min(diff) > 1e-12:
        p = float(stats.ttest_rel(a, b).pvalue)
    else:
        p = 1.0 if abs(diff[0]) < 1e-12 else min(1.0, 2 * 0.5 ** len(diff))
    return {"diff": out["mean"], "diff_ci": out["ci"], "p": p, "pairs": len(diff)}


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict:
    """Difference of means ``a - b`` of two independent samples, its Welch t-interval and the Welch
    t-test p-value (for runs that are not paired, e.g. two systems' seeds): scipy's
    ``ttest_ind(equal_var=False)``, which is undefined when neither sample varies."""
    import numpy as np
    from scipy import stats

    x, y = np.asarray(a, float), np.asarray(b, float)
    diff = float(x.mean() - y.mean())
    if x.var(ddof=1) + y.var(ddof=1) == 0:
        return {"diff": diff, "ci": (diff, diff), "p": 1.0 if diff == 0 else 0.0}
    res = stats.ttest_ind(x, y, equal_var=False)
    ci = res.confidence_interval(level)
    return {"diff": diff, "ci": (float(ci.low), float(ci.high)), "p": float(res.pvalue)}


def bootstrap_seeds_items(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]] | None = None,
                          level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of ``a`` (or of ``a - b``, paired) by a two-way bootstrap:
    seeds (rows) and test items (columns) are each resampled with replacement, the same draws for
    ``a`` and ``b``, so the interval carries both sources of uncertainty (a t-interval over seeds
    alone ignores that the test set is a sample too). ``a`` and ``b``: :math:`(S, N)` per-item scores,
    or :math:`(S, N, 3)` per-item (correct, predicted, gold) counts, whose statistic is the mean over
    seeds of micro F1 over the drawn items (:func:`micro_f1`; F1 is not a mean of per-item scores)."""
    import numpy as np

    x = np.asarray(a, dtype=float)
    y = None if b is None else np.asarray(b, dtype=float)
    if x.ndim not in (2, 3) or x.size == 0 or (x.ndim == 3 and x.shape[2] != 3) or \
            (y is not None and y.shape != x.shape):
        raise ValueError("bootstrap_seeds_items needs equally shaped (seeds, items) or (seeds, items, 3) arrays")

    def stat(v, rows, cols):
        drawn = v[np.ix_(rows, cols)] if v.ndim == 2 else v[rows][:, cols]
        return drawn.mean() if v.ndim == 2 else micro_f1(drawn.sum(axis=1)).mean()

    rng = np.random.default_rng(seed)
    S, N = x.shape[:2]
    stats_ = np.empty(n_boot)
    for i in range(n_boot):
        rows, cols = rng.integers(S, size=S), rng.integers(N, size=N)
        stats_[i] = stat(x, rows, cols) - (0.0 if y is None else stat(y, rows, cols))
    lo, hi = np.quantile(stats_, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def micro_f1(counts):
    """Micro F1 ``2 c / (p + g)`` of (correct, predicted, gold) counts along the last axis (0 where
    nothing was predicted or gold), as :class:`kgllm.tasks.docre.DocREScore` computes it."""
    import numpy as np

    c = np.asarray(counts, dtype=float)
    denom = c[..., 1] + c[..., 2]
    return np.divide(2 * c[..., 0], denom, out=np.zeros_like(denom), where=denom > 0)


def item_intervals(runs: dict, base: dict | None = None) -> dict | None:
    """The mean's 95% interval over seeds and test items, and the paired difference's against
    ``base`` over the seeds both have (:func:`bootstrap_seeds_items`); ``runs``/``base``:
    ``seed -> {item: score}``, on the items every run holds. ``None`` when a run has no items."""
    if not runs or any(not v for v in runs.values()):
        return None
    seeds = sorted(runs)
    items = sorted(set.intersection(*(set(runs[s]) for s in seeds)))
    if not items:
        return None
    counts = not isinstance(runs[seeds[0]][items[0]], (int, float))  # (correct, predicted, gold) per item
    out = {"ci": bootstrap_seeds_items([[runs[s][i] for i in items] for s in seeds]), "items": len(items),
           "statistic": "micro F1" if counts else "accuracy"}
    common = [s for s in seeds if base and base.get(s)]
    shared = sorted(set(items).intersection(*(set(base[s]) for s in common))) if common else []
    if shared:
        out["diff_ci"] = bootstrap_seeds_items([[runs[s][i] for i in shared] for s in common],
                                               [[base[s][i] for i in shared] for s in common])
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def fmt_ci(ci: tuple[float, float] | None, digits: int = 4) -> str:
    """An interval as ``[lo, hi]`` (``–`` when undefined)."""
    return "–" if ci is None else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def fmt_p(p: float) -> str:
    """A p-value for a table (``<0.001`` below that)."""
    return "<0.001" if p < 0.001 else f"{p:.3f}"
