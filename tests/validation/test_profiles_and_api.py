"""Profiles (merge, JSON), profile-based drift agreeing with raw data, the drift API, concept drift, reports."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInputError
from mloop.validation import Profile, drift, performance_by_window, profile, register_method
from mloop.validation.drift_detection import METHODS, RESULT_VERSION
from mloop.validation.drift_detection.report import PLOTLY_FILE, plotly_js

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from drift import SHIFTED, make  # noqa: E402  (the benchmark's own data generator)


@pytest.fixture(scope="module")
def bench_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make(30_000, 1, False), make(30_000, 2, True)


def test_defaults_flag_exactly_the_shifted_columns(bench_data) -> None:  # type: ignore[no-untyped-def]
    ref, cur = bench_data
    result = drift(ref, cur)
    assert sorted(result.drifted_columns) == sorted(SHIFTED)
    assert result.drift_share == 0.2 and not result.dataset_drift


def test_profile_vs_profile_and_profile_vs_data_give_the_same_verdicts(bench_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, cur = bench_data
    raw = drift(ref, cur)
    ref_profile = Profile.load(profile(ref).save(tmp_path / "ref.json"))
    cur_profile = profile(cur, reference=ref_profile)
    own_bins = profile(cur)  # built without the reference: compared through its own CDF
    for other in (drift(ref_profile, cur), drift(ref_profile, cur_profile), drift(ref, cur_profile)):
        assert [(c.column, c.method, c.drifted) for c in other.columns] == \
            [(c.column, c.method, c.drifted) for c in raw.columns]
        assert np.allclose([c.statistic for c in other.columns], [c.statistic for c in raw.columns])
    assert drift(ref_profile, own_bins).drifted_columns == raw.drifted_columns


def test_merged_windows_equal_the_profile_of_all_rows(bench_data) -> None:  # type: ignore[no-untyped-def]
    ref, cur = bench_data
    ref_profile = profile(ref)
    windows = [profile(cur.iloc[i:i + 6000], reference=ref_profile) for i in range(0, len(cur), 6000)]
    merged = windows[0]
    for w in windows[1:]:
        merged = merged.merge(w)
    whole = profile(cur, reference=ref_profile)
    assert merged.rows == whole.rows
    for name, col in whole.columns.items():
        other = merged[name]
        if col.kind == "numeric":
            assert np.array_equal(col.counts, other.counts) and col.count == other.count
            assert col.sum == pytest.approx(other.sum) and (col.min, col.max) == (other.min, other.max)
        else:
            assert col.freq == other.freq
    assert drift(ref_profile, merged).drifted_columns == drift(ref, cur).drifted_columns
    with pytest.raises(InvalidInputError, match="same reference"):
        profile(cur).merge(whole)


def test_small_profiles_keep_values_for_exact_tests() -> None:
    rng = np.random.default_rng(0)
    a, b = pd.DataFrame({"x": rng.normal(0, 1, 400)}), pd.DataFrame({"x": rng.normal(0.3, 1, 400)})
    pa = Profile.from_dict(json.loads(profile(a).to_json()))
    assert drift(pa, b)["x"].p_value == pytest.approx(drift(a, b)["x"].p_value)


def test_methods_per_column_thresholds_and_registry(bench_data) -> None:  # type: ignore[no-untyped-def]
    ref, cur = bench_data
    result = drift(ref, cur, columns=["num_00", "cat_0", "num_01"],
                   methods={"num_00": "ks", "cat_0": "psi"}, thresholds={"num_01": 0.001})
    assert [(c.column, c.method) for c in result.columns] == [("num_00", "ks"), ("cat_0", "psi"),
                                                             ("num_01", "wasserstein")]
    assert result["num_01"].drifted and result["num_01"].threshold == 0.001
    assert result["num_00"].p_value is not None and result["num_00"].p_value < 1e-10

    @register_method("mean_ratio", kinds=("numeric",), threshold=1.05)
    def _mean_ratio(pair):  # type: ignore[no-untyped-def]
        return max(pair.cur.mean / pair.ref.mean, pair.ref.mean / pair.cur.mean), None

    try:
        custom = drift(ref, cur, columns=["num_09", "num_02"], methods={"num_09": "mean_ratio", "num_02": "mean_ratio"})
        assert custom.drifted_columns == ["num_09"]
    finally:
        METHODS.pop("mean_ratio")
    with pytest.raises(InvalidInputError, match="numeric"):
        drift(ref, cur, columns=["num_00"], methods={"num_00": "chisquare"})
    with pytest.raises(InvalidInputError, match="one of"):
        drift(ref, cur, columns=["num_00"], methods={"num_00": "nope"})
    with pytest.raises(InvalidInputError, match="columns of the reference"):
        drift(ref, cur, columns=["absent"])


def test_prediction_and_target_drift_through_the_same_api() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 3000), "pred": rng.normal(10, 2, 3000),
                        "label": rng.choice([0, 1], 3000)})
    cur = pd.DataFrame({"x": rng.normal(0, 1, 3000), "pred": rng.normal(12, 2, 3000),
                        "label": rng.choice([0, 1], 3000, p=[0.3, 0.7])})
    result = drift(ref, cur, columns=["x"], prediction="pred", target="label", kinds={"label": "categorical"})
    assert [c.column for c in result.prediction] == ["pred"] and result.prediction[0].drifted
    assert [c.column for c in result.target] == ["label"] and result.target[0].kind == "categorical"
    assert result.target[0].drifted and not result["x"].drifted
    only_predictions = drift(ref["pred"], cur["pred"])  # a Series (or array) of predictions works too
    assert only_predictions.drifted_columns == ["pred"]


def test_empty_and_all_null_columns_do_not_crash() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    cur = pd.DataFrame({"x": [np.nan, np.nan], "c": [None, None]})
    result = drift(ref, cur)
    assert not result.any_drift and all("no values" in c.note for c in result.columns)
    assert drift(ref, ref.iloc[:0]).columns[0].note


def test_concept_drift_by_window() -> None:
    t = pd.date_range("2026-01-01", periods=60, freq="D", tz="UTC")
    y = np.tile(["a", "b"], 30)
    pred = y.copy()
    pred[45:] = "a"
    windows = performance_by_window(pd.DataFrame({"t": t, "y": y, "p": pred}), target="y", prediction="p",
                                    time="t", window="15D")
    assert windows["accuracy"].tolist() == [1.0, 1.0, 1.0, pytest.approx(7 / 15)]
    assert windows["degraded"].tolist() == [False, False, False, True]
    with pytest.raises(InvalidInputError, match="metric"):
        performance_by_window(pd.DataFrame({"t": t, "y": y, "p": pred}), target="y", prediction="p", time="t",
                              metric="auc")


def test_reports_html_size_does_not_grow_with_rows_and_json_is_versioned(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sizes = []
    for n in (2_000, 200_000):
        ref, cur = make(n, 1, False), make(n, 2, True)
        result = drift(ref, cur)
        html = result.to_html(tmp_path / f"r{n}.html")
        sizes.append(len(html.encode()))
        assert html.count("Plotly.newPlot(") == 20 and "<script src=" not in html  # self-contained
        data = json.loads(result.to_json())
        assert data["kind"] == "mloop.drift" and data["version"] == RESULT_VERSION
        assert data["columns"][0]["drifted"] and not data["columns"][-1]["drifted"]  # sorted by drift
    bundle = len(plotly_js().encode())
    assert sizes[1] < bundle + 600_000 and abs(sizes[1] - sizes[0]) < 20_000


@pytest.mark.parametrize("self_contained", [True, False])
def test_a_report_draws_its_charts_without_internet(tmp_path, self_contained: bool) -> None:  # type: ignore[no-untyped-def]
    """Opened in Chromium with every request off this machine refused: the charts must still be drawn."""
    from tests.browser import browse

    result = drift(make(2_000, 1, False), make(2_000, 2, True))
    page = tmp_path / "reports" / "drift.html"
    html = result.to_html(page, self_contained=self_contained)
    # nothing loads from another host (the bundle itself names its vendor's site in links it can draw)
    assert not re.search(r"""(src|href)=["']?https?:""", html.replace(plotly_js(), ""))
    drawn, answered, failed = browse(page.as_uri(), ".chart .plot-container")
    assert drawn == html.count("Plotly.newPlot(") == 20
    assert not failed and all(u.startswith("file://") for u in answered), (answered, failed)
    assert (tmp_path / "reports" / PLOTLY_FILE).is_file() != self_contained


def test_a_report_that_is_not_self_contained_needs_a_folder() -> None:
    result = drift(make(500, 1, False), make(500, 2, True))
    with pytest.raises(InvalidInputError) as refused:
        result.to_html(self_contained=False)
    assert refused.value.field == "path"
