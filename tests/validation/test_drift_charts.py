"""Drift charts cover both samples, and every effect size is finite and explained."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance
from typer.testing import CliRunner

from mloop.cli import _register, app
from mloop.errors import InvalidInputError
from mloop.validation import Profile, drift, profile
from mloop.validation.drift_detection.report import figure_data, render_html

N = 20_000
_register()


def with_nulls(values: np.ndarray, rng: np.random.Generator, share: float = 0.12) -> np.ndarray:
    values = values.astype(float)
    values[rng.random(len(values)) < share] = np.nan
    return values


def bars(column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """(bin edges, reference %, current %) from a column's figure data."""
    ref, cur = figure_data(column)
    bins = np.array(ref["customdata"])
    assert np.array_equal(bins[1:, 0], bins[:-1, 1])  # contiguous bins
    assert ref["customdata"] == cur["customdata"] and ref["x"] == cur["x"]
    return np.r_[bins[:, 0], bins[-1, 1]], np.array(ref["y"]), np.array(cur["y"])


def share_at(edges: np.ndarray, shares: np.ndarray, value: float) -> float:
    """The share of the bin holding ``value`` (the last bin is closed)."""
    return float(shares[min(np.searchsorted(edges, value, side="right") - 1, len(shares) - 1)])


@pytest.fixture(scope="module")
def shifted() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fares around 50 in the reference, around 90 now (the reference's largest is about 72); nulls and
    categories on both sides, a category the reference never saw."""
    rng = np.random.default_rng(11)
    weather = np.array(["clear", "rain", "snow", None], dtype=object)
    ref = pd.DataFrame({"fare": with_nulls(rng.normal(50, 5, N), rng),
                        "hour": rng.integers(0, 24, N),
                        "weather": rng.choice(weather, N, p=[0.6, 0.2, 0.08, 0.12])})
    cur = pd.DataFrame({"fare": with_nulls(rng.normal(90, 5, N), rng),
                        "hour": rng.integers(20, 41, N),
                        "weather": rng.choice(np.array([*weather, "hail"], dtype=object), N,
                                              p=[0.3, 0.3, 0.1, 0.15, 0.15])})
    return ref, cur


def test_current_data_beyond_the_reference_is_drawn_where_it_is(shifted) -> None:  # type: ignore[no-untyped-def]
    ref, cur = shifted
    result = drift(ref, cur)
    edges, p, q = bars(result["fare"])
    assert len(edges) == 41  # shown to 6 digits
    assert edges[0] <= ref["fare"].quantile(0.005) + 1e-3 and edges[-1] >= cur["fare"].quantile(0.995) - 1e-3
    assert p.sum() == pytest.approx(99.0, abs=1.0) and q.sum() == pytest.approx(99.0, abs=1.0)
    assert share_at(edges, p, 90.0) == 0 and share_at(edges, q, 50.0) == 0  # the two samples do not overlap
    # the current histogram keeps its bell: the peak bin holds far more than the bins two std away
    peak = share_at(edges, q, 90.0)
    assert peak > 3 * share_at(edges, q, 80.0) and peak > 3 * share_at(edges, q, 100.0)
    expected, _ = np.histogram(cur["fare"].dropna(), edges)
    assert np.allclose(q, 100 * expected / cur["fare"].count(), atol=0.6)  # within a bin's rounding
    # and the distance measured from the profiles is the one on the raw values
    raw = wasserstein_distance(ref["fare"].dropna(), cur["fare"].dropna()) / ref["fare"].std()
    assert result["fare"].statistic == pytest.approx(raw, rel=0.01) and result["fare"].note == ""


def test_a_reference_with_few_values_keeps_one_bar_per_value_and_reaches_the_current(shifted) -> None:  # type: ignore[no-untyped-def]
    ref, cur = shifted
    edges, p, q = bars(drift(ref, cur)["hour"])
    assert np.array_equal(edges, np.arange(-0.5, 41.0))  # hours 0..23 of the reference, stretched to 40
    assert share_at(edges, p, 30) == 0 and share_at(edges, q, 30) == pytest.approx(100 / 21, abs=0.4)
    assert share_at(edges, p, 5) == pytest.approx(100 / 24, abs=0.4) and share_at(edges, q, 5) == 0


def test_categories_and_nulls_still_draw(shifted) -> None:  # type: ignore[no-untyped-def]
    ref, cur = shifted
    weather = drift(ref, cur)["weather"]
    ref_trace, cur_trace = figure_data(weather)
    shares = dict(zip(cur_trace["x"], cur_trace["y"], strict=True))
    assert set(ref_trace["x"]) == {"clear", "rain", "snow", "hail"} and shares["hail"] > 15  # of non-null rows
    assert dict(zip(ref_trace["x"], ref_trace["y"], strict=True))["hail"] == 0
    assert weather.n_current == cur["weather"].notna().sum() and weather.drifted


@pytest.mark.parametrize("n", [300, N])  # an exact test on the values kept, and the binned distance
def test_a_constant_reference_gets_a_finite_explained_effect_size(n: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"fee": with_nulls(np.full(n, 2.5), rng), "city": rng.choice(["a", "b"], n)})
    cur = pd.DataFrame({"fee": with_nulls(rng.normal(3.0, 0.5, n), rng), "city": rng.choice(["a", "b"], n)})
    result = drift(ref, cur)
    fee = result["fee"]
    both = pd.concat([ref["fee"], cur["fee"]]).dropna()
    expected = wasserstein_distance(ref["fee"].dropna(), cur["fee"].dropna()) / both.std()
    assert np.isfinite(fee.effect_size) and fee.effect_size == pytest.approx(expected, rel=0.02)
    assert "single value (2.5)" in fee.note and "both samples together" in fee.note and fee.drifted
    assert result.to_dict()["columns"][0]["effect_size"] == pytest.approx(fee.effect_size)
    assert all(np.isfinite(c.effect_size) for c in result.columns)
    edges, p, q = bars(fee)
    assert np.all(np.diff(edges) > 0) and share_at(edges, p, 2.5) == 100.0
    assert (q > 0).sum() >= 20 and q.sum() == pytest.approx(99.0, abs=1.0)  # the current's spread, drawn
    html = result.to_html(tmp_path / "constant.html")
    assert "single value (2.5)" in html and "Infinity" not in html
    assert "note on fee: the reference has a single value (2.5)" in str(result)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    printed = CliRunner().invoke(app, ["drift", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")])
    assert printed.exit_code == 1 and "note on fee: the reference has a single value (2.5)" in printed.output


def test_constant_columns_on_both_sides() -> None:
    same = drift(pd.DataFrame({"x": [4.0] * 3000}), pd.DataFrame({"x": [4.0] * 3000}))["x"]
    assert (same.effect_size, same.drifted) == (0.0, False) and "same single value (4)" in same.note
    moved = drift(pd.DataFrame({"x": [4.0] * 3000}), pd.DataFrame({"x": [5.0] * 3000}))["x"]
    assert moved.effect_size == pytest.approx(1 / 0.5, rel=0.03) and moved.drifted  # |4 - 5| / std of both
    edges, p, q = bars(moved)
    assert share_at(edges, p, 4.0) == 100.0  # the reference's own bin: exact
    assert edges[-1] == 5.0 and q[-2:].sum() == 100.0  # beyond it: to within a tail bin (1/64 of the tail's span)


def test_tails_survive_json_and_merge_like_the_whole(shifted) -> None:  # type: ignore[no-untyped-def]
    ref, cur = shifted
    reference = profile(ref)
    windows = [profile(cur.iloc[i:i + 3000], reference=reference) for i in range(0, N, 3000)]
    merged = windows[0]
    for window in windows[1:]:
        merged = merged.merge(window)
    whole = profile(cur, reference=reference)
    assert merged["fare"].tails == whole["fare"].tails and sum(whole["fare"].tails.above.values()) > 0.85 * N
    loaded = Profile.from_dict(json.loads(whole.to_json()))
    assert loaded["fare"].tails == whole["fare"].tails
    assert drift(reference, loaded)["fare"].statistic == pytest.approx(drift(ref, cur)["fare"].statistic)
    broken = json.loads(whole.to_json())
    broken["columns"]["fare"]["tails"]["above"][0][1] += 1  # counts no longer add up to the histogram's
    with pytest.raises(InvalidInputError) as refused:
        Profile.from_dict(broken)
    assert refused.value.field == "profile.tails"


BIG = np.finfo(float).max  # the sentinel some systems write for "no value"


def with_sentinels(values: np.ndarray, rng: np.random.Generator, sentinels: tuple[float, ...]) -> np.ndarray:
    values = with_nulls(values, rng)
    values[rng.choice(len(values), len(sentinels), replace=False)] = sentinels
    return values


@pytest.mark.parametrize("rows", [400, N])  # exact tests on kept samples, and binned distances
def test_sentinels_at_the_largest_float_profile_and_drift_with_finite_numbers(rows: int) -> None:
    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"fare": with_sentinels(rng.gamma(2.0, 15.0, rows), rng, (BIG, -BIG, np.inf))})
    same = pd.DataFrame({"fare": with_sentinels(rng.gamma(2.0, 15.0, rows), rng, (BIG, -BIG, -np.inf))})
    one_row = pd.DataFrame({"fare": with_sentinels(rng.gamma(2.0, 15.0, rows), rng, (BIG,))})
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow anywhere, not even a warning
        reference = profile(ref)
        loaded = Profile.from_dict(json.loads(reference.to_json()))
        calm = drift(loaded, same)["fare"]
        clean = drift(pd.DataFrame({"fare": rng.gamma(2.0, 15.0, rows)}), one_row)["fare"]
        html = render_html(drift(ref, one_row))
    assert reference["fare"].inf == 1 and reference["fare"].max == BIG and reference["fare"].min == -BIG
    count = reference["fare"].count  # the two finite sentinels dominate the spread; BIG squared is not needed
    assert reference["fare"].std == pytest.approx(BIG * np.sqrt(2 / (count - 1)), rel=0.01)
    assert not calm.drifted and 0 <= calm.effect_size < 0.1  # the same sentinels on both sides: no drift
    assert np.isfinite([calm.statistic, calm.effect_size, clean.statistic, clean.effect_size]).all()
    # one row at the largest float is far from anything the clean reference holds: a huge, finite shift
    assert clean.effect_size > 1e300 and clean.drifted == (clean.method == "wasserstein")  # KS: one row of many
    assert "Infinity" not in html and len(html) < 6_000_000


def test_a_profile_whose_tail_bins_are_wider_than_the_largest_float_is_refused() -> None:
    rng = np.random.default_rng(10)
    data = profile(pd.DataFrame({"fare": np.r_[rng.gamma(2.0, 15.0, 1000), [5000.0]]}))
    for scale, edges in [(1500, None), (1100, None), (40, [0.0, 1e300])]:
        tampered = json.loads(data.to_json())
        column = tampered["columns"]["fare"]
        column["tails"]["scale"] = scale
        if edges is not None:  # wide reference bins: far fewer doublings fit
            column["edges"], column["counts"] = edges, [0, 1000, 1]
            column["tails"] = {"scale": scale, "below": [], "above": [[0, 1]]}
        with pytest.raises(InvalidInputError) as refused:
            Profile.from_dict(tampered)
        assert refused.value.field == "profile.tails.scale" and str(scale) in str(refused.value)
    tampered = json.loads(data.to_json())
    tampered["columns"]["fare"]["edges"][3] = float("inf")
    with pytest.raises(InvalidInputError, match="profile.edges"):
        Profile.from_dict(tampered)


def test_values_spread_over_the_whole_float_range_drift_with_finite_numbers() -> None:
    rng = np.random.default_rng(11)
    wide = [pd.DataFrame({"x": with_nulls(rng.uniform(-BIG / 2, BIG / 2, 5000) * 2, rng)}) for _ in range(2)]
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        reference = profile(wide[0])
        same = drift(reference, wide[1])["x"]
        one_bin = drift(profile(wide[0], bins=1), wide[1])["x"]  # one bin from about -BIG to BIG
    assert np.isfinite(reference["x"].edges).all() and reference["x"].std == pytest.approx(BIG / np.sqrt(3), rel=0.03)
    assert not same.drifted and 0 <= same.effect_size < 0.05
    assert np.isfinite([one_bin.statistic, one_bin.effect_size]).all()


def test_a_category_or_column_named_like_markup_cannot_run_script_in_the_report() -> None:
    """The exploit: chart data used to be plain JSON inside <script>, so this value closed the element."""
    import json
    import re

    import pandas as pd

    from mloop.validation import drift

    payload = "</script><script>alert(1)</script>"
    ref = pd.DataFrame({payload: ["a", "b"] * 300, "c": [payload, "x"] * 300})
    cur = pd.DataFrame({payload: ["a", "a"] * 300, "c": [payload, payload] * 300})
    page = drift(ref, cur).to_html()
    assert "<script>alert(1)" not in page and "alert(1)</script>" not in page
    calls = re.findall(r"Plotly\.newPlot\('col\d+',(.*?),(\{\"title.*?\}),\{displayModeBar", page)
    assert len(calls) == 2
    shown = [json.loads(data) for data, _ in calls] + [json.loads(layout) for _, layout in calls]
    assert payload in json.dumps(shown)  # the value itself still reaches the chart, as text
