"""Table statistics checked against hand computations."""

import math

import pytest
from scipy import stats as sps

from kgllm.util.stats import holm, mean_ci, paired


def test_mean_ci_is_the_t_interval():
    r = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    half = sps.t.ppf(0.975, 4) * math.sqrt(2.5) / math.sqrt(5)  # sd of 1..5 is sqrt(2.5)
    assert r["mean"] == 3.0 and r["std"] == pytest.approx(math.sqrt(2.5))
    assert r["ci"] == (pytest.approx(3 - half), pytest.approx(3 + half)) and half == pytest.approx(1.9632, abs=1e-4)
    assert mean_ci([0.7])["ci"] is None


def test_paired_difference_and_interval():
    a, b = [0.55, 0.56, 0.51], [0.50, 0.52, 0.48]
    r = paired(a, b)
    assert r["diff"] == pytest.approx(0.04) and r["pairs"] == 3
    half = sps.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)  # differences 0.05, 0.04, 0.03: sd 0.01
    assert r["diff_ci"] == (pytest.approx(0.04 - half), pytest.approx(0.04 + half))
    assert r["p"] == pytest.approx(2 * sps.t.sf(0.04 / (0.01 / math.sqrt(3)), df=2))
    assert paired([1, 2], [1, 2])["p"] == 1.0
    assert paired([2, 3], [1, 2])["p"] == 0.5  # two pairs that moved the same way: sign test 2 * 0.5**2
    assert paired([2, 3, 4, 5, 6], [1, 2, 3, 4, 5])["p"] == pytest.approx(0.0625)  # 2 * 0.5**5, not 0
    with pytest.raises(ValueError):
        paired([1.0], [2.0])


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3 * 0.01 = 0.03, 2 * 0.02 = 0.04, 1 * 0.04 = 0.04 (monotone)
    assert holm([0.04, 0.01, 0.02]) == [pytest.approx(0.04), pytest.approx(0.03), pytest.approx(0.04)]
    assert holm([0.5, 0.6]) == [pytest.approx(1.0), pytest.approx(1.0)]
    assert holm([]) == []


def test_p_values_print_without_false_zeros():
    from kgllm.util.stats import fmt_p

    assert fmt_p(0.0004) == "<0.001" and fmt_p(0.0123) == "0.012" and fmt_p(1.0) == "1.000"


def test_bootstrap_over_seeds_and_items():
    import numpy as np

    from kgllm.util.stats import bootstrap_seeds_items

    same = [[1, 0, 1, 1], [0, 0, 1, 1]]
    assert bootstrap_seeds_items(same, same) == (0.0, 0.0)  # paired: identical arms differ by exactly 0
    assert bootstrap_seeds_items([[1, 1], [1, 1]]) == (1.0, 1.0)
    # a hand computation: one seed, items resampled with the same generator draws
    items = [1, 0, 0, 1, 1, 0, 1, 1, 1, 0]
    rng = np.random.default_rng(3)
    means = []
    for _ in range(500):
        rng.integers(1, size=1)
        means.append(np.mean(np.asarray(items)[rng.integers(10, size=10)]))
    expected = tuple(np.quantile(means, [0.025, 0.975]))
    assert bootstrap_seeds_items([items], n_boot=500, seed=3) == pytest.approx(expected)
    # seeds that disagree widen the interval beyond the items-only one
    rng = np.random.default_rng(0)
    a = (rng.random((5, 400)) < np.array([[0.3], [0.5], [0.7], [0.4], [0.6]])).astype(float)
    lo, hi = bootstrap_seeds_items(a)
    lo1, hi1 = bootstrap_seeds_items(a[:1] * 0 + a.mean(0, keepdims=True))
    assert hi - lo > 2 * (hi1 - lo1) and lo < a.mean() < hi
    with pytest.raises(ValueError):
        bootstrap_seeds_items([[1, 0]], [[1, 0, 1]])


def test_bootstrap_of_micro_f1_from_per_item_counts():
    import numpy as np

    from kgllm.util.stats import bootstrap_seeds_items, micro_f1

    # (correct, predicted, gold) per document: micro F1 pools the counts, it is not a mean of per-item F1s
    docs = [(2, 3, 4), (0, 1, 0), (5, 5, 6), (0, 0, 2), (1, 4, 1)]
    assert micro_f1(np.sum(docs, axis=0)) == pytest.approx(2 * 8 / (13 + 13))
    assert micro_f1([0, 0, 0]) == 0.0
    rng = np.random.default_rng(5)
    f1s = []
    for _ in range(300):  # one seed: the same generator draws, by hand
        rng.integers(1, size=1)
        c = np.asarray(docs)[rng.integers(5, size=5)].sum(0)
        f1s.append(2 * c[0] / (c[1] + c[2]) if c[1] + c[2] else 0.0)
    expected = tuple(np.quantile(f1s, [0.025, 0.975]))
    assert bootstrap_seeds_items([docs], n_boot=300, seed=5) == pytest.approx(expected)
    assert bootstrap_seeds_items([docs, docs], [docs, docs]) == (0.0, 0.0)
    with pytest.raises(ValueError):
        bootstrap_seeds_items([[(1, 2)]])
