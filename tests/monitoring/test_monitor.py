"""Monitors over a known story: one input drifts from a known window, one slice degrades once labels arrive,
latency rises; each shows up exactly where it was planted, and nowhere else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInputError, NotFoundError
from mloop.monitoring import create_monitor, run_monitor, series, window_profile
from mloop.monitoring.alerts import alert_history_frame, apply_rules, evaluate_alerts, list_alerts, load_rules
from tests.monitoring.conftest import T0, write_labels, write_predictions

WINDOW = pd.Timedelta(minutes=5)
WINDOWS, SHIFT_AT, SHIFT_END, SLOW_AT, SLOW_END, PER_WINDOW = 16, 6, 12, 8, 14, 1500
INPUTS = ["km", "hour", "zone"]
# declared segments: one inside the degraded slice (airport trips at night), one that excludes it
SEGMENTS = {"airport-night": "zone = 'airport' and (hour < 6 or hour >= 22)", "elsewhere": "not zone = 'airport'"}


def trips(n: int, rng: np.random.Generator, km_shift: float = 0.0) -> pd.DataFrame:
    km = rng.gamma(2.0, 3.0, n) + km_shift
    km[rng.random(n) < 0.12] = np.nan  # 12% of distances unknown
    zone = rng.choice(["airport", "center", "harbor", "north"], n).astype(object)
    zone[rng.random(n) < 0.1] = None
    return pd.DataFrame({"km": km, "hour": rng.integers(0, 24, n), "zone": zone})


@pytest.fixture
def model_version(settings):  # type: ignore[no-untyped-def]
    """A classifier registered as eta v1 with its training profile and schema attached."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mloop.registry import registry_for
    from mloop.tracking import TrackingClient
    from mloop.validation.attach import attach_to_model_version

    rng = np.random.default_rng(3)
    train = trips(5000, rng)
    late = ((train["km"].fillna(5) > 6) ^ (rng.random(len(train)) < 0.1)).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, categorical_features="from_dtype").fit(
        train.assign(zone=train["zone"].astype("category")), late)
    from mloop._sdk import ActiveRun

    with TrackingClient(settings).start_run("eta", run_class=ActiveRun) as run:
        mv = run.log_model(model, name="eta", training_data=train.assign(zone=train["zone"].astype("category")))
    predicted = model.predict(train.assign(zone=train["zone"].astype("category")))
    attach_to_model_version("eta", mv.version, data=train, predictions=predicted, registry=registry_for(settings))
    return model


def traffic(model) -> tuple[pd.DataFrame, pd.Series]:  # type: ignore[no-untyped-def]
    """WINDOWS windows of PER_WINDOW requests; ``km`` shifts in [SHIFT_AT, SHIFT_END), latency rises in
    [SLOW_AT, SLOW_END)."""
    rng = np.random.default_rng(11)
    parts = []
    for w in range(WINDOWS):
        frame = trips(PER_WINDOW, rng, km_shift=8.0 if SHIFT_AT <= w < SHIFT_END else 0.0)
        offsets = np.sort(rng.uniform(0, WINDOW.total_seconds() - 1, PER_WINDOW))
        frame["time"] = pd.Timestamp(T0) + w * WINDOW + pd.to_timedelta(offsets, unit="s")
        frame["latency_ms"] = rng.gamma(2.0, 2.0, PER_WINDOW) * (10 if SLOW_AT <= w < SLOW_END else 1)
        frame["w"] = w
        parts.append(frame)
    rows = pd.concat(parts, ignore_index=True)
    rows["id"] = [f"r{i}-0" for i in range(len(rows))]
    rows["version"], rows["role"] = "1", "primary"
    predicted = model.predict(rows[INPUTS].assign(zone=rows["zone"].astype("category")))
    proba = model.predict_proba(rows[INPUTS].assign(zone=rows["zone"].astype("category")))
    rows["output"] = predicted.astype(int).tolist()
    rows["proba"] = [f'{{"0": {p[0]}, "1": {p[1]}}}' for p in proba]
    # the truth: right 90% of the time, except at the airport after the shift, where it is mostly wrong
    degraded = (rows["zone"] == "airport") & (rows["w"] >= SHIFT_AT) & (rows["w"] < SHIFT_END)
    wrong = np.random.default_rng(5).random(len(rows)) < np.where(degraded, 0.8, 0.1)
    truth = pd.Series(np.where(wrong, 1 - predicted, predicted).astype(int), index=rows.index)
    return rows, truth


def test_drift_latency_and_a_degraded_slice_show_where_they_were_planted(settings, model_version) -> None:
    rows, truth = traffic(model_version)
    write_predictions(settings, "eta", rows, INPUTS)
    create_monitor("eta-5m", "eta", window="5m", slices=["zone"], segments=SEGMENTS, settings=settings)
    end = pd.Timestamp(T0) + WINDOWS * WINDOW

    report = run_monitor("eta-5m", now=end + pd.Timedelta(minutes=3), settings=settings)
    assert report.windows == WINDOWS and report.rows == len(rows)

    found = series("eta-5m", ["drifted"], settings=settings).pivot(index="start", columns="column", values="value")
    shifted = [1.0 if SHIFT_AT <= w < SHIFT_END else 0.0 for w in range(WINDOWS)]
    assert found["km"].tolist() == shifted  # from exactly that window, until exactly that one
    assert found["hour"].sum() == 0 and found["zone"].sum() == 0
    # the longer trips are mostly late: the predictions drift against the training ones exactly as long
    assert found["(prediction)"].tolist() == shifted
    p99 = series("eta-5m", "latency_p99", settings=settings)["value"].to_numpy()
    assert p99[SLOW_AT:SLOW_END].min() > 30 > max(p99[:SLOW_AT].max(), p99[SLOW_END:].max())
    traffic_rows = series("eta-5m", "rows", settings=settings)["value"].tolist()
    assert traffic_rows == [PER_WINDOW] * WINDOWS
    nulls = series("eta-5m", "null_share", column="km", settings=settings)["value"]
    assert nulls.between(0.06, 0.2).all()
    assert series("eta-5m", "accuracy", settings=settings).empty  # no labels yet

    # Labels arrive an hour later: the windows they belong to are computed again, and the slice shows.
    write_labels(settings, rows["id"].tolist(), truth.tolist(), end + pd.Timedelta(hours=1))
    again = run_monitor("eta-5m", now=end + pd.Timedelta(hours=1, minutes=5), settings=settings)
    assert again.recomputed == WINDOWS
    accuracy = series("eta-5m", "accuracy", settings=settings)
    airport = accuracy[accuracy["slice"] == "zone=airport"]["value"].to_numpy()
    center = accuracy[accuracy["slice"] == "zone=center"]["value"].to_numpy()
    assert airport[:SHIFT_AT].min() > 0.75 and airport[SHIFT_AT:SHIFT_END].max() < 0.4 < airport[SHIFT_END:].min()
    assert center.min() > 0.75
    # A declared segment's accuracy is that of its own rows: it drops in exactly the shifted windows.
    night = accuracy[accuracy["slice"] == "segment=airport-night"]["value"].to_numpy()
    assert len(night) == WINDOWS
    assert night[:SHIFT_AT].min() > 0.7 and night[SHIFT_AT:SHIFT_END].max() < 0.4 < night[SHIFT_END:].min()
    assert accuracy[accuracy["slice"] == "segment=elsewhere"]["value"].min() > 0.8
    in_night = (rows["zone"] == "airport") & ((rows["hour"] < 6) | (rows["hour"] >= 22))
    counted = series("eta-5m", "labelled", settings=settings)
    counted = counted[counted["slice"] == "segment=airport-night"]["value"].tolist()
    assert counted == [float(in_night[rows["w"] == w].sum()) for w in range(WINDOWS)]
    overall = accuracy[accuracy["slice"] == ""]["value"].to_numpy()
    for w in range(WINDOWS):  # the monitor's accuracy is the plain accuracy of that window's labelled rows
        part = rows["w"] == w
        assert overall[w] == pytest.approx(float((rows["output"][part] == truth[part]).mean()))
    assert len(series("eta-5m", "auc", settings=settings)) >= WINDOWS

    # A third run with nothing new changes nothing, and a window's profile can be laid over the training one.
    assert run_monitor("eta-5m", now=end + pd.Timedelta(hours=1, minutes=6), settings=settings).windows == 0
    profile = window_profile("eta-5m", pd.Timestamp(T0) + SHIFT_AT * WINDOW, "1", settings=settings)
    assert profile["km"].mean > 10 and profile.rows == PER_WINDOW

    # Alerts: each fires once, K windows into its episode, and resolves once when the episode ends.
    apply_rules(load_rules({"rules": [
        {"name": "input-drift", "monitor": "eta-5m", "metric": "drift_effect", "column": "*", "above": 0.3,
         "for": 3, "severity": "critical"},
        {"name": "slow", "monitor": "eta-5m", "metric": "latency_p99", "above": 30, "windows": 2},
        {"name": "airport-accuracy", "monitor": "eta-5m", "metric": "accuracy", "slice": "zone=airport",
         "below": 0.6, "windows": 2}]}), settings=settings)
    events = evaluate_alerts("eta-5m", settings=settings)
    at = {(e.rule, e.key.split("/")[3], e.event): (e.window - T0.timestamp() * 1000) // (WINDOW.value // 10**6)
          for e in events}
    assert at == {("input-drift", "km", "firing"): SHIFT_AT + 2, ("input-drift", "km", "resolved"): SHIFT_END,
                  ("slow", "", "firing"): SLOW_AT + 1, ("slow", "", "resolved"): SLOW_END,
                  ("airport-accuracy", "", "firing"): SHIFT_AT + 1,
                  ("airport-accuracy", "", "resolved"): SHIFT_END}
    assert len(events) == len(at)  # once each
    assert evaluate_alerts("eta-5m", settings=settings) == []  # judged windows are never judged again
    history = alert_history_frame("input-drift", settings=settings)
    assert history["event"].tolist() == ["firing", "resolved"] and (history["severity"] == "critical").all()
    assert list_alerts(firing_only=True, settings=settings).empty


def test_bad_monitor_definitions_are_refused_by_name(settings) -> None:
    for segments, said in [({"long": "km >"}, "segments.long"), ({"long": "__import__('os')"}, "segments.long"),
                           ({"long": "3 > 2"}, "segments.long"), ({"long": ""}, "segments.long"),
                           ({"bad name!": "km > 1"}, "segments"), (["km > 1"], "segments")]:
        with pytest.raises(InvalidInputError) as refused:
            create_monitor("m", "eta", segments=segments, settings=settings)  # type: ignore[arg-type]
        assert refused.value.field == said, segments
    with pytest.raises(InvalidInputError, match="window"):
        create_monitor("m", "eta", window="7m", settings=settings)
    with pytest.raises(InvalidInputError, match="window"):
        create_monitor("m", "eta", window="2d", settings=settings)
    with pytest.raises(InvalidInputError, match="task"):
        create_monitor("m", "eta", task="ranking", settings=settings)
    with pytest.raises(InvalidInputError, match="start"):
        create_monitor("m", "eta", start="2026-03-08 06:00", settings=settings)  # no zone: ambiguous
    with pytest.raises(NotFoundError, match="monitor"):
        run_monitor("nope", settings=settings)
