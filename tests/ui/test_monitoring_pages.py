"""Monitoring dashboards over generated traffic with a known story (tests/monitoring/test_monitor.py): ``km``
drifts in windows 6-11, latency rises in windows 8-13, the airport slice degrades once labels arrive; a fifth of
the requests go to an A/B variant (v3 ``variant-1``) and the last windows answer some requests with a 5xx. The heat
map shows ``km`` first and hot exactly there; a cell opens that window's distribution over the training one; the
latency, traffic, error and performance charts draw primary, shadow and variant side by side; the error-rate alert
still firing, the alerts that resolved and their history are on the page. The API rolls a month of
windows up in SQL, and the rollup agrees with the windows it summarizes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from mloop.config import Settings
from tests.monitoring.conftest import T0, write_errors, write_labels, write_predictions
from tests.monitoring.test_monitor import INPUTS, SHIFT_AT, SHIFT_END, WINDOW, WINDOWS, traffic, trips
from tests.server.conftest import serve
from tests.ui.conftest import Browser

MONITOR = "eta-5m"
FAILING_FROM, FAILED_PER_WINDOW = 13, 60  # windows 13-15 answer 60 requests each with a 5xx: 4% > the 1% rule


def _register(settings: Settings):  # type: ignore[no-untyped-def]
    """eta v1, a classifier of late trips, with its training profile attached (the drift reference)."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mloop._sdk import ActiveRun
    from mloop.registry import registry_for
    from mloop.tracking import TrackingClient
    from mloop.validation.attach import attach_to_model_version

    rng = np.random.default_rng(3)
    train = trips(3000, rng).assign(zone=lambda f: f["zone"].astype("category"))
    late = (train["km"].fillna(5) > 6).astype(int)
    model = HistGradientBoostingClassifier(max_iter=15, categorical_features="from_dtype").fit(train, late)
    with TrackingClient(settings).start_run("eta", run_class=ActiveRun) as run:
        version = run.log_model(model, name="eta", training_data=train)
    attach_to_model_version("eta", version.version, data=train.astype({"zone": object}),
                            registry=registry_for(settings))
    return model


def _failures() -> pd.DataFrame:
    """FAILED_PER_WINDOW requests of v1 primary answered 503 in each window from FAILING_FROM on."""
    times = [pd.Timestamp(T0) + w * WINDOW + pd.Timedelta(seconds=5 * i)
             for w in range(FAILING_FROM, WINDOWS) for i in range(FAILED_PER_WINDOW)]
    return pd.DataFrame({"time": times, "version": "1", "role": "primary", "status": 503})


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from mloop.monitoring import create_monitor, run_monitor
    from mloop.monitoring.alerts import apply_rules, evaluate_alerts, load_rules

    settings = Settings.load(home=str(tmp_path_factory.mktemp("monitoring-home")), tracking_uri="")
    rows, truth = traffic(_register(settings))
    shadow = rows.sample(frac=0.2, random_state=1).assign(version="2", role="shadow")
    shadow["id"] = "shadow-" + shadow["id"]  # a shadow model answers a copy of a fifth of the requests
    shadow["latency_ms"] = shadow["latency_ms"] * 2
    variant = rows.sample(frac=0.2, random_state=2).index  # an A/B test sends a fifth of the requests to v3
    served = rows.copy()
    served.loc[variant, ["version", "role"]] = ["3", "variant-1"]
    write_predictions(settings, "eta", pd.concat([served, shadow]).sort_values("time"), INPUTS)
    write_errors(settings, "eta", _failures())
    create_monitor(MONITOR, "eta", window="5m", slices=["zone"], settings=settings)
    end = pd.Timestamp(T0) + WINDOWS * WINDOW
    run_monitor(MONITOR, now=end + pd.Timedelta(minutes=3), settings=settings)
    write_labels(settings, rows["id"].tolist(), truth.tolist(), end + pd.Timedelta(hours=1))
    run_monitor(MONITOR, now=end + pd.Timedelta(hours=1, minutes=5), settings=settings)
    apply_rules(load_rules({"rules": [
        {"name": "input-drift", "monitor": MONITOR, "metric": "drift_effect", "column": "*", "above": 0.3,
         "for": 3, "severity": "critical"},
        {"name": "slow", "monitor": MONITOR, "metric": "latency_p99", "above": 30, "windows": 2},
        {"name": "failing", "monitor": MONITOR, "metric": "error_rate", "above": 0.01, "for": 2, "role": "primary",
         "severity": "critical"}]}), settings)
    evaluate_alerts(MONITOR, settings=settings)
    for live in serve(settings):
        yield live.url


def test_the_heat_map_puts_the_drifting_input_first_and_opens_its_window(dashboard: str, browser: Browser) -> None:
    page = browser.open(f"{dashboard}/monitoring/{MONITOR}")
    heat = page.locator(".heatmap[data-order]")
    order = json.loads(heat.get_attribute("data-order"))
    assert order[0] == "km" and set(INPUTS) <= set(order)
    z = page.evaluate("() => document.querySelector('.heatmap').data[0].z[0]")
    hot = [i for i, v in enumerate(z) if v is not None and v > 0.3]
    assert hot == list(range(SHIFT_AT, SHIFT_END))
    # v1 primary, v2 shadow and v3 variant-1 side by side (labels are for primary and variant requests)
    for key, lines in (("traffic", 3), ("latency", 9), ("errors", 3), ("perf-accuracy", 2)):
        assert page.locator(f".chart[data-key='{key}']").get_attribute("data-lines") == str(lines), key
    assert int(page.locator(".chart[data-key='by-slice']").get_attribute("data-lines")) >= 4
    names = "(key) => document.querySelector(`.chart[data-key=${key}]`).data.map(t => t.name).sort()"
    assert page.evaluate(names, "traffic") == ["v1 primary", "v2 shadow", "v3 variant-1"]
    assert page.evaluate(names, "perf-accuracy") == ["v1 primary", "v3 variant-1"]
    errors = page.evaluate("""() => Object.fromEntries(document.querySelector('.chart[data-key=errors]').data
        .map(t => [t.name, t.y]))""")
    assert errors["v2 shadow"] == [0.0] * WINDOWS and errors["v3 variant-1"] == [0.0] * WINDOWS
    assert errors["v1 primary"][:FAILING_FROM] == [0.0] * FAILING_FROM
    primary_requests = page.evaluate("""() => document.querySelector('.chart[data-key=traffic]').data
        .find(t => t.name === 'v1 primary').y""")
    for failed_share, answered in zip(errors["v1 primary"][FAILING_FROM:], primary_requests[FAILING_FROM:],
                                      strict=True):
        assert failed_share == pytest.approx(FAILED_PER_WINDOW / (answered + FAILED_PER_WINDOW))
    firing = page.locator("table.alerts").inner_text()
    assert "failing" in firing and f"{MONITOR}/1/primary//" in firing and "firing" in firing
    assert "input-drift" not in firing and "slow" not in firing  # both resolved before the end
    history = page.locator("table.alert-history").inner_text()
    assert "input-drift" in history and "slow" in history and "resolved" in history
    browser.shot("monitoring-dashboard")

    heat.scroll_into_view_if_needed()
    cell = page.evaluate("""([x, y]) => {
        const el = document.querySelector('.heatmap'), box = el.getBoundingClientRect(), l = el._fullLayout;
        return [box.left + l._size.l + l.xaxis.d2p(x), box.top + l._size.t + l.yaxis.d2p(y)];
    }""", [int((pd.Timestamp(T0) + SHIFT_AT * WINDOW).timestamp() * 1000), "km"])
    page.mouse.click(*cell)
    page.wait_for_selector(".drift-detail[data-state=ready] .chart[data-key=distribution]")
    detail = page.locator(".drift-detail")
    assert "km: window 2026-03-08 06:30 UTC" in detail.locator("h3").inner_text()
    names = page.evaluate("() => document.querySelector('.chart[data-key=distribution]').data.map(t => t.name)")
    assert names == ["training", "window"]
    window_share = page.evaluate("() => document.querySelector('.chart[data-key=distribution]').data[1].y")
    training_share = page.evaluate("() => document.querySelector('.chart[data-key=distribution]').data[0].y")
    assert sum(window_share[len(window_share) // 2:]) > sum(training_share[len(training_share) // 2:])
    browser.shot("monitoring-window")
    assert not browser.problems, browser.problems


def test_rolled_up_the_heat_map_opens_the_worst_window_of_an_hour(dashboard: str, browser: Browser) -> None:
    page = browser.open(f"{dashboard}/monitoring/{MONITOR}?every=1h")
    assert json.loads(page.locator(".heatmap[data-order]").get_attribute("data-order"))[0] == "km"
    assert page.evaluate("() => document.querySelector('.heatmap').data[0].x.length") == 2  # 06:00 and 07:00
    errors = page.evaluate("""() => document.querySelector('.chart[data-key=errors]').data
        .find(t => t.name === 'v1 primary').y""")
    windows = pd.DataFrame(httpx.get(f"{dashboard}/api/monitors/{MONITOR}/series", timeout=30,
                                     params={"metric": "error_rate", "version": "1", "role": "primary"}).json())
    assert errors == [0.0, windows["value"].max()] and windows["value"].max() > 0  # an hour's worst window
    heat = page.locator(".heatmap")
    heat.scroll_into_view_if_needed()
    cell = page.evaluate("""([x, y]) => {
        const el = document.querySelector('.heatmap'), box = el.getBoundingClientRect(), l = el._fullLayout;
        return [box.left + l._size.l + l.xaxis.d2p(x), box.top + l._size.t + l.yaxis.d2p(y)];
    }""", [int(pd.Timestamp(T0).timestamp() * 1000), "km"])
    page.mouse.click(*cell)
    page.wait_for_selector(".drift-detail[data-state=ready] .chart[data-key=distribution]")
    opened = int(page.locator(".chart[data-key=distribution]").get_attribute("data-start"))
    window = (opened - int(pd.Timestamp(T0).timestamp() * 1000)) // int(WINDOW.total_seconds() * 1000)
    assert SHIFT_AT <= window < 12  # the hour 06:00-07:00 holds windows 0-11; the worst is a shifted one
    assert not browser.problems, browser.problems


def test_the_overview_lists_monitors(dashboard: str, browser: Browser) -> None:
    page = browser.open(f"{dashboard}/monitoring")
    assert page.locator(f"table.monitors a[href='/monitoring/{MONITOR}']").count() == 1
    assert page.locator("table.alerts tbody tr").count() == 1
    assert "failing" in page.locator("table.alerts").inner_text()
    browser.shot("monitoring")
    assert not browser.problems, browser.problems


def test_series_roll_up_in_sql_and_agree_with_the_windows(dashboard: str) -> None:
    url = f"{dashboard}/api/monitors/{MONITOR}/series"
    params = [("metric", m) for m in ("rows", "latency_p99", "accuracy", "drift_effect")]
    windows = pd.DataFrame(httpx.get(url, params=params, timeout=30).json())
    hourly = pd.DataFrame(httpx.get(url, params=[*params, ("every", "1h")], timeout=30).json())
    windows["hour"] = windows["start"] // 3_600_000 * 3_600_000
    keys = ["hour", "version", "role", "metric", "column", "slice"]
    expected = windows.groupby(keys)["value"].agg(["sum", "max", "mean"]).reset_index()
    merged = hourly.rename(columns={"start": "hour"}).merge(expected, on=keys)
    assert len(merged) == len(hourly) == len(expected) and hourly["start"].nunique() == 2
    want = {"rows": "sum", "latency_p99": "max", "drift_effect": "max", "accuracy": "mean"}
    for metric, how in want.items():
        part = merged[merged["metric"] == metric]
        assert not part.empty and (part["value"] - part[how]).abs().max() < 1e-9, metric
    refused = httpx.get(url, params={"every": "5m"}, timeout=10)
    assert refused.status_code == 422 and "every" in refused.text
    missing = httpx.get(f"{dashboard}/api/monitors/{MONITOR}/reference", params={"version": "9"}, timeout=10)
    assert missing.status_code == 404 and "version" in missing.text


def test_a_month_rolls_up_the_same_on_sqlite_and_postgresql(tmp_path, db_url: str) -> None:
    """A month of 5-minute windows (8,640 per figure) read hourly and daily: sums, maxima and means per bucket."""
    import numpy as np
    from sqlalchemy import insert

    from mloop.monitoring import create_monitor
    from mloop.monitoring._tables import monitor_series
    from mloop.monitoring.rollup import refresh_rollups, rolled_up_series
    from mloop.store.sql import open_database

    settings = Settings.load(home=str(tmp_path / "home"), db_url=db_url)
    create_monitor("month", "eta", window="5m", settings=settings)
    starts = int(T0.timestamp() * 1000) + np.arange(30 * 288) * 300_000
    rng = np.random.default_rng(2)
    figures = {"rows": rng.integers(50, 150, len(starts)).astype(float), "latency_p99": rng.gamma(2, 10, len(starts)),
               "accuracy": rng.uniform(0.7, 0.95, len(starts))}
    with open_database(db_url).write() as conn:
        conn.execute(insert(monitor_series), [
            {"monitor": "month", "start": int(s), "version": "1", "role": "primary", "metric": metric, "column": "",
             "slice": "", "value": float(values[i])} for metric, values in figures.items()
            for i, s in enumerate(starts)])
    refresh_rollups("month", settings=settings)  # series written here, not by the monitor: roll them up
    for every, step in (("1h", 3_600_000), ("1d", 86_400_000)):  # buckets start on the hour, at midnight UTC
        found = rolled_up_series("month", every, settings=settings)
        bucket = starts // step
        for metric, values in figures.items():
            got = found[found["metric"] == metric]["value"].to_numpy()
            how = {"rows": "sum", "latency_p99": "max", "accuracy": "mean"}[metric]
            want = pd.Series(values).groupby(bucket).agg(how).to_numpy()
            assert np.allclose(got, want), (every, metric)
        assert len(found) == 3 * len(np.unique(bucket))
        assert (found["start"].dt.as_unit("ms").astype("int64") % step == 0).all()


def test_drift_of_recent_traffic_against_the_training_profile(dashboard: str, browser: Browser) -> None:
    """The version's quality page measures the monitor's latest windows against training: the last 10 windows
    hold the shift of ``km`` (windows 6-11), the last 4 do not."""
    page = browser.open(f"{dashboard}/quality/models/eta/versions/1")
    page.select_option("form.drift-form select[name=source]", MONITOR)
    assert page.locator("form.drift-form input[name=run]").is_hidden()
    page.fill("form.drift-form input[name=windows]", "10")
    page.click("form.drift-form button[type=submit]")
    browser.until("() => document.querySelector('.drift-result').dataset.state === 'ready'")
    assert "drifted" in page.locator("table.drift tr[data-column=km]").inner_text()
    assert "10 windows from" in page.inner_text(".drift-result .verdict")
    assert "null" not in page.inner_text(".drift-result")
    assert f"monitor={MONITOR}" in page.url and "windows=10" in page.url
    frame = page.wait_for_selector(".drift-result iframe").content_frame()
    assert "last 10 windows of monitor" in frame.wait_for_selector("h1", timeout=20_000).inner_text()
    browser.shot("quality-drift-monitor")
    calm = httpx.get(f"{dashboard}/api/quality/models/eta/versions/1/drift",
                     params={"monitor": MONITOR, "windows": 4}).json()
    assert "km" not in calm["drifted_columns"] and calm["windows"] == 4
    both = httpx.get(f"{dashboard}/api/quality/models/eta/versions/1/drift", params={"monitor": MONITOR, "run": "x"})
    assert both.status_code == 422 and both.json()["field"] == "run"
    assert not browser.problems, browser.problems
