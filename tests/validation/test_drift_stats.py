"""Statistical correctness: agreement with SciPy, false-positive rates near nominal, known shifts detected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mloop.validation import drift


def test_ks_matches_scipy_on_small_samples() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 300), rng.normal(0.2, 1.1, 400)
    c = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}))["x"]
    expected = stats.ks_2samp(a, b)
    assert c.method == "ks"
    assert c.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert c.p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_chisquare_matches_scipy() -> None:
    ref = pd.DataFrame({"c": ["a"] * 120 + ["b"] * 60 + ["c"] * 20})
    cur = pd.DataFrame({"c": ["a"] * 80 + ["b"] * 90 + ["c"] * 30 + ["d"] * 5})
    col = drift(ref, cur)["c"]
    table = np.array([[120, 60, 20, 0], [80, 90, 30, 5]])
    expected = stats.chi2_contingency(table, correction=False)
    assert col.method == "chisquare"
    assert col.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert col.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    # the same homogeneity statistic is scipy's chisquare on the flattened table with the margins' expectation
    flat = stats.chisquare(table.ravel(), expected.expected_freq.ravel(), ddof=table.shape[1])
    assert col.statistic == pytest.approx(flat.statistic) and col.p_value == pytest.approx(flat.pvalue)


def test_wasserstein_exact_on_small_and_close_on_large_samples() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.gamma(2, 2, 500), rng.gamma(2.2, 2, 700)
    small = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}), methods={"x": "wasserstein"})["x"]
    assert small.statistic == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a, ddof=1), rel=1e-9)
    for make in (lambda n: rng.normal(5, 2, n), lambda n: rng.lognormal(0, 0.7, n), lambda n: rng.integers(0, 24, n)):
        a, b = make(50_000), make(60_000) * 1.1
        big = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}))["x"]
        exact = stats.wasserstein_distance(a, b) / np.std(a, ddof=1)
        assert big.method == "wasserstein" and big.statistic == pytest.approx(exact, rel=0.03, abs=0.003)


def test_jensen_shannon_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"c": rng.choice(list("abcd"), 5000, p=[0.4, 0.3, 0.2, 0.1])})
    cur = pd.DataFrame({"c": rng.choice(list("abcde"), 5000, p=[0.2, 0.3, 0.2, 0.2, 0.1])})
    col = drift(ref, cur)["c"]
    p = ref["c"].value_counts(normalize=True).reindex(list("abcde"), fill_value=0).to_numpy()
    q = cur["c"].value_counts(normalize=True).reindex(list("abcde"), fill_value=0).to_numpy()
    assert col.method == "jensenshannon" and col.statistic == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_false_positive_rate_near_nominal(kind: str) -> None:
    """Same-distribution data over 400 seeds: KS and chi-square flag about 5% (binomial 99.9% band)."""
    flags = []
    for seed in range(400):
        rng = np.random.default_rng(seed)
        if kind == "numeric":
            a, b = rng.normal(0, 1, 200), rng.normal(0, 1, 250)
        else:
            a, b = rng.choice(list("abcde"), 300), rng.choice(list("abcde"), 300)
        flags.append(drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}))["x"].drifted)
    rate = float(np.mean(flags))
    assert 0.02 <= rate <= 0.09, rate


def test_large_same_distribution_samples_flag_nothing() -> None:
    """Where a p-value test flags negligible differences, the large-sample defaults stay quiet."""
    rng = np.random.default_rng(4)
    n = 200_000
    ref = pd.DataFrame({"x": rng.normal(0, 1, n), "c": rng.choice(list("abc"), n, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"x": rng.normal(0.02, 1, n), "c": rng.choice(list("abc"), n, p=[0.49, 0.31, 0.2])})
    result = drift(ref, cur)
    assert result.drifted_columns == []
    assert stats.ks_2samp(ref["x"], cur["x"]).pvalue < 0.05  # the naive test calls a 0.02 sd shift "drift"


@pytest.mark.parametrize("n", [300, 20_000])
def test_known_shifts_are_detected(n: int) -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"mean": rng.normal(0, 1, n), "scale": rng.exponential(1, n), "same": rng.uniform(0, 1, n),
                        "cat": rng.choice(list("abcd"), n, p=[0.4, 0.3, 0.2, 0.1])})
    cur = pd.DataFrame({"mean": rng.normal(0.5, 1, n), "scale": rng.exponential(1.6, n), "same": rng.uniform(0, 1, n),
                        "cat": rng.choice(list("abcd"), n, p=[0.15, 0.25, 0.3, 0.3])})
    result = drift(ref, cur)
    assert sorted(result.drifted_columns) == ["cat", "mean", "scale"]
    assert [c.method for c in result.columns] == (["ks"] * 3 + ["chisquare"] if n <= 1000
                                                  else ["wasserstein"] * 3 + ["jensenshannon"])


def test_psi_is_selectable_and_sane() -> None:
    rng = np.random.default_rng(6)
    a = rng.normal(0, 1, 50_000)
    same = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": rng.normal(0, 1, 50_000)}), methods={"x": "psi"})["x"]
    moved = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": rng.normal(0.5, 1, 50_000)}), methods={"x": "psi"})["x"]
    assert same.statistic < 0.01 and not same.drifted
    assert 0.15 < moved.statistic < 0.4 and moved.drifted  # PSI of a 0.5 sd shift is about 0.25


def test_even_bins_arithmetic_matches_binary_search() -> None:
    from mloop.validation.profile import bin_index

    rng = np.random.default_rng(7)
    edges = np.linspace(-3.0, 5.0, 201)
    values = np.concatenate([rng.normal(1, 3, 20_000), edges, [-1e9, 1e9, -3.0 - 1e-12, 5.0 + 1e-12]])
    fast = bin_index(values, edges)
    slow = np.searchsorted(edges, values, side="right")
    slow[values == edges[-1]] = len(edges) - 1
    # on an exact edge floating point may pick either neighbour; anywhere else the bins agree
    assert np.mean(fast == slow) > 0.999 and np.all(np.abs(fast - slow) <= 1)
    assert fast[-4:].tolist() == [0, 201, 0, 201]


def test_ks_on_large_samples_from_bins_is_close_to_scipy() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(0, 1, 50_000), rng.normal(0.03, 1, 40_000)
    col = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}), methods={"x": "ks"})["x"]
    exact = stats.ks_2samp(a, b)
    assert col.statistic == pytest.approx(exact.statistic, abs=0.003)
    assert (col.p_value < 0.05) == (exact.pvalue < 0.05)
