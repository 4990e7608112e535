"""Silences, data-quality violations, day-long windows and the example rules of the alerting docs, each over
traffic whose story is known: every figure and every event is checked against the window it was planted in."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import select

from mloop._util.clock import now_ms
from mloop.config import Settings
from mloop.events._tables import events as outbox
from mloop.monitoring import create_monitor, run_monitor, series
from mloop.monitoring.alerts import AlertRule, alert_history_frame, apply_rules, evaluate_alerts, silence
from mloop.store.sql import open_database
from tests.monitoring.conftest import T0, write_errors, write_labels, write_predictions
from tests.monitoring.test_monitor import INPUTS, SHIFT_AT, SHIFT_END, WINDOW, WINDOWS, model_version, traffic, trips

__all__ = ["model_version"]  # the fixture, imported for the tests below

START_MS = int(pd.Timestamp(T0).timestamp() * 1000)
STEP_MS = int(WINDOW.total_seconds() * 1000)


def _window(start: pd.Timestamp) -> int:
    return int((start - pd.Timestamp(T0)) / WINDOW)


def _simple_traffic(windows: int, per_window: int, slow: set[int]) -> pd.DataFrame:
    """``per_window`` requests in each 5-minute window from T0; 300 ms in the ``slow`` windows, 10 ms elsewhere."""
    rng = np.random.default_rng(8)
    w = np.repeat(np.arange(windows), per_window)
    frame = pd.DataFrame({"time": pd.Timestamp(T0) + pd.to_timedelta(w * 300 + rng.uniform(0, 299, len(w)), unit="s"),
                          "km": rng.gamma(2.0, 3.0, len(w)), "output": rng.normal(20, 4, len(w)),
                          "latency_ms": np.where(np.isin(w, list(slow)), 300.0, 10.0) + rng.random(len(w))})
    frame["id"] = [f"q{i}-0" for i in range(len(frame))]
    frame["version"], frame["role"] = "1", "primary"
    return frame.sort_values("time", ignore_index=True)


def _published(settings: Settings) -> list[dict]:
    import json

    with open_database(settings.db_url).read() as conn:
        rows = conn.execute(select(outbox.c.payload).where(outbox.c.source == "monitoring").order_by(outbox.c.id))
        return [json.loads(r.payload) for r in rows]


def _run_to(settings: Settings, name: str, windows: int) -> None:
    """Compute the monitor's windows before ``windows`` (and not the next one: lateness is 2 minutes)."""
    run_monitor(name, now=pd.Timestamp(T0) + windows * WINDOW + pd.Timedelta(minutes=3), alerts=False,
                settings=settings)


def test_a_silence_keeps_its_events_in_history_and_out_of_the_outbox(settings: Settings) -> None:
    """Slow in windows 2-3 and 5-6: the firing at window 2 and its resolution at 4 fall in the silence, are
    recorded as silenced and never published; after the silence ends, the firing at window 5 is published."""
    write_predictions(settings, "calm", _simple_traffic(8, 40, slow={2, 3, 5, 6}), ["km"])
    create_monitor("calm-5m", "calm", window="5m", settings=settings)
    apply_rules([AlertRule("slow", "calm-5m", "latency_p99", above=100)], settings)
    until = now_ms() + 3_600_000
    silence("slow", until=pd.Timestamp(until, unit="ms", tz="UTC"), key="calm-5m/1/", settings=settings)

    _run_to(settings, "calm-5m", 5)
    during = evaluate_alerts("calm-5m", settings=settings)
    assert [(e.event, (e.window - START_MS) // STEP_MS, e.silenced) for e in during] == [
        ("firing", 2, True), ("resolved", 4, True)]
    assert _published(settings) == []

    _run_to(settings, "calm-5m", 8)
    after = evaluate_alerts("calm-5m", settings=settings, now=until + 1)
    assert [(e.event, (e.window - START_MS) // STEP_MS, e.silenced) for e in after] == [
        ("firing", 5, False), ("resolved", 7, False)]
    assert [(p["event"], p["alert_id"]) for p in _published(settings)] == [
        ("alert.firing", after[0].id), ("alert.resolved", after[1].id)]
    history = alert_history_frame("slow", settings=settings)
    assert history["silenced"].astype(bool).tolist() == [True, True, False, False]
    assert evaluate_alerts("calm-5m", settings=settings, now=until + 1) == []  # judged once, published once


def test_violations_show_in_exactly_the_windows_that_have_them(settings: Settings, model_version) -> None:  # noqa: F811
    """Window 1 has nulls in ``hour`` (never null in training), window 2 an ``hour`` of 99 (training: 0-23),
    window 3 a zone never seen in training; windows 0 and 4 are clean."""
    rng = np.random.default_rng(21)
    parts = []
    for w in range(5):
        frame = trips(200, rng).assign(hour=lambda f: f["hour"].astype(float))
        frame["km"] = frame["km"].clip(1.0, 15.0)  # well inside the training range: only the planted ones fail
        frame["time"] = pd.Timestamp(T0) + w * WINDOW + pd.to_timedelta(np.sort(rng.uniform(0, 299, 200)), unit="s")
        parts.append(frame)
    parts[1].loc[parts[1].index[:7], "hour"] = np.nan
    parts[2].loc[parts[2].index[:5], "hour"] = 99.0
    parts[3].loc[parts[3].index[:9], "zone"] = "moon"
    rows = pd.concat(parts, ignore_index=True)
    rows["id"] = [f"d{i}-0" for i in range(len(rows))]
    rows["version"], rows["role"], rows["latency_ms"], rows["output"] = "1", "primary", 5.0, 0
    write_predictions(settings, "eta", rows, INPUTS)
    create_monitor("eta-quality", "eta", window="5m", settings=settings)
    _run_to(settings, "eta-quality", 5)

    found = series("eta-quality", "violations", settings=settings)
    got = {(_window(r.start), r.column, r.slice): r.value for r in found.itertuples()}
    assert {(w, c) for w, c, _ in got} == {(1, "hour"), (2, "hour"), (3, "zone")}
    assert got == {(1, "hour", "not_null"): 7.0, (2, "hour", "range"): 5.0, (3, "zone", "category"): 9.0}
    share = series("eta-quality", "violation_share", settings=settings)
    share = dict(zip(share["start"].map(_window), share["value"], strict=True))
    assert share == {0: 0.0, 1: 7 / 200, 2: 5 / 200, 3: 9 / 200, 4: 0.0}


def test_a_day_long_window_over_two_days_gives_two_windows(settings: Settings) -> None:
    rng = np.random.default_rng(5)
    day = pd.Timestamp(T0).normalize()
    counts = {0: 120, 1: 75}
    times = np.concatenate([np.sort(rng.uniform(0, 86_399, n)) + d * 86_400 for d, n in counts.items()])
    rows = pd.DataFrame({"time": day + pd.to_timedelta(times, unit="s"), "km": rng.gamma(2.0, 3.0, len(times)),
                         "output": rng.normal(20, 4, len(times)), "latency_ms": 5.0})
    rows["id"] = [f"day{i}-0" for i in range(len(rows))]
    rows["version"], rows["role"] = "1", "primary"
    write_predictions(settings, "daily", rows, ["km"])
    create_monitor("daily-1d", "daily", window="1d", settings=settings)
    run_monitor("daily-1d", now=day + pd.Timedelta(days=2, hours=1), alerts=False, settings=settings)
    found = series("daily-1d", "rows", settings=settings).sort_values("start")
    assert found["start"].tolist() == [day, day + pd.Timedelta(days=1)]
    assert found["value"].tolist() == [120.0, 75.0]


def test_the_example_auc_and_error_rate_rules_fire_and_resolve(settings: Settings, model_version) -> None:  # noqa: F811
    """AUC on labelled traffic drops in the shift (windows 6-11); windows 3-4 answer 5% of requests with a 5xx."""
    rows, truth = traffic(model_version)
    write_predictions(settings, "eta", rows, INPUTS)
    failed = [pd.Timestamp(T0) + w * WINDOW + pd.Timedelta(seconds=3 * i) for w in (3, 4) for i in range(80)]
    write_errors(settings, "eta", pd.DataFrame({"time": failed, "version": "1", "role": "primary", "status": 500}))
    create_monitor("eta-5m", "eta", window="5m", settings=settings)
    end = pd.Timestamp(T0) + WINDOWS * WINDOW
    write_labels(settings, rows["id"].tolist(), truth.tolist(), end + pd.Timedelta(minutes=1))
    run_monitor("eta-5m", now=end + pd.Timedelta(minutes=5), alerts=False, settings=settings)
    apply_rules([AlertRule("auc-low", "eta-5m", "auc", below=0.7, severity="critical"),
                 AlertRule("errors", "eta-5m", "error_rate", above=0.01)], settings)
    events = evaluate_alerts("eta-5m", settings=settings)
    happened = sorted((e.rule, e.event, (e.window - START_MS) // STEP_MS) for e in events)
    assert happened == [("auc-low", "firing", SHIFT_AT), ("auc-low", "resolved", SHIFT_END),
                        ("errors", "firing", 3), ("errors", "resolved", 5)]
    rate = series("eta-5m", "error_rate", settings=settings)
    assert rate.loc[rate["start"].map(_window) == 3, "value"].item() == 80 / (80 + 1500)
