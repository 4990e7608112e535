"""The chart window of a metric on the real server: small windows answer every point, large ones one lowest and
one highest value per bucket, so a spike survives however long the series."""

from __future__ import annotations

import httpx

from tests.ui.conftest import UiData


def window(ui_data: UiData, run: str, **params: object) -> dict:
    answer = httpx.get(f"{ui_data.url}/api/runs/{ui_data.runs[run]}/metric-window", params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_small_window_answers_every_point(ui_data: UiData) -> None:
    found = window(ui_data, "hgb", key="loss", start=10, end=19)
    assert found["steps"] == list(range(10, 20)) and found["total"] == 10
    assert (found["first_step"], found["last_step"]) == (0, 199)


def test_a_large_window_keeps_each_buckets_extremes(ui_data: UiData) -> None:
    whole = window(ui_data, "hgb", key="loss")["values"]
    found = window(ui_data, "hgb", key="loss", max_points=20)
    assert found["total"] == 200 and len(found["steps"]) <= 20
    assert min(found["values"]) == min(whole) and max(found["values"]) == max(whole)
    assert found["steps"] == sorted(found["steps"])


def test_keys_with_slashes_and_bad_input(ui_data: UiData) -> None:
    assert window(ui_data, "hgb", key="system/cpu_percent")["total"] == 200
    assert window(ui_data, "hgb", key="nothing")["total"] == 0
    answer = httpx.get(f"{ui_data.url}/api/runs/{'0' * 32}/metric-window", params={"key": "loss"}, timeout=10)
    assert answer.status_code == 404 and answer.json()["field"] == "run_id"
    answer = httpx.get(f"{ui_data.url}/api/runs/{ui_data.runs['hgb']}/metric-window",
                       params={"key": "loss", "max_points": 2}, timeout=10)
    assert answer.status_code == 422 and "max_points" in answer.text


def test_runs_page_rejects_a_page_too_large_and_a_bad_filter(ui_data: UiData) -> None:
    url = f"{ui_data.url}/api/runs/page"
    assert httpx.post(url, json={"limit": 5000}, timeout=10).status_code == 422
    answer = httpx.post(url, json={"filter": "metrics.val_rmse <"}, timeout=10)
    assert answer.status_code in (400, 422) and answer.json()["field"] == "filter"
    page = httpx.post(url, json={"experiment_ids": [ui_data.experiment_id], "roots_only": True, "limit": 2,
                                 "offset": 2}, timeout=10).json()
    assert page["total"] == 7 and len(page["runs"]) == 2 and page["offset"] == 2
    assert {"loss", "val_rmse"} <= set(page["columns"]["metrics"]) and "mloop.libraries" not in page["columns"]["tags"]


def test_a_sample_previews_a_long_window_without_reading_it(ui_data: UiData) -> None:
    found = window(ui_data, "hgb", key="loss", max_points=10, sample="true")
    assert found["total"] is None and found["steps"] == [0, 22, 44, 66, 88, 110, 132, 154, 176, 199]
    short = window(ui_data, "hgb", key="loss", start=0, end=5, max_points=10, sample="true")
    assert short["total"] == 6 and short["steps"] == list(range(6))  # nothing to sample: every point
