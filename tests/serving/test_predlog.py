"""The prediction log: written off the response path, joined to late labels, complete after a graceful shutdown."""

from __future__ import annotations

import json
import signal

import httpx

from mloop.config import Settings
from mloop.serving import EndpointConfig, PredictionLog, ServeConfig, read_predictions
from tests.serving.conftest import ROW, running, serve_process, trip_frame


def test_feedback_is_joined_to_its_prediction(settings, model_dir) -> None:
    config = ServeConfig(endpoints=(EndpointConfig(name="m", uri=str(model_dir)),), reload_seconds=0,
                         log_flush_seconds=0.1)
    rows = trip_frame(3, seed=9).to_dict("records")
    with running(config, settings) as server:
        answer = server.post("/predict", rows).json()
        ids = answer["ids"]
        assert server.post("/feedback", {"id": ids[0], "label": 12.5}).json() == {"accepted": 1}
        assert server.post("/feedback", {"feedback": [{"id": ids[2], "label": 30}, {"id": ids[2], "label": 31}]}) \
            .json() == {"accepted": 2}
    log = read_predictions(settings, "m").set_index("id")
    assert list(log.index) == ids
    assert log.loc[ids[0], "label"] == "12.5" and log.loc[ids[2], "label"] == "31"  # the latest label wins
    assert log.loc[ids[1], "label"] is None or log["label"].isna()[ids[1]]
    assert json.loads(log.loc[ids[1], "inputs"]) == rows[1]
    assert float(log.loc[ids[1], "output"]) == answer["predictions"][1]
    assert set(log["model"]) == {"m"} and (log["latency_ms"] > 0).all()


def test_feedback_for_an_id_no_prediction_has_is_rejected_naming_it(settings, model_dir) -> None:
    config = ServeConfig(endpoints=(EndpointConfig(name="m", uri=str(model_dir)),), reload_seconds=0,
                         log_flush_seconds=0.1)
    with running(config, settings) as server:
        request_id = server.post("/predict", [ROW]).headers["x-prediction-id"]  # the request's, not a row's
        r = server.post("/feedback", {"feedback": [{"id": f"{request_id}-0", "label": 1},
                                                   {"id": request_id, "label": 2}]})
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["field"] == "feedback[1].id" and request_id in body["message"] and "/predict" in body["message"]
        r = server.post("/feedback", ["not an object"])
        assert r.status_code == 422 and r.json()["field"] == "feedback[0]" and "not an object" in r.json()["message"]
    assert read_predictions(settings, "m")["label"].isna().all()  # nothing of the rejected batch was stored


def test_log_writes_in_batches_off_the_request_path(tmp_path) -> None:
    settings = Settings.load(home=str(tmp_path / "h"))
    log = PredictionLog(settings, flush_seconds=60, max_rows=1000)
    for i in range(999):
        log.record("m", "1", "primary", f"r{i}", {"x": [float(i)]}, [i * 2.0], 0.001, 1)
    assert log.written == 0  # nothing written yet: records only append to memory
    log.record("m", "1", "primary", "last", {"x": [1.0, 2.0]}, [1.0, 2.0], 0.001, 2)
    log.close()
    frame = read_predictions(settings, "m", with_feedback=False)
    assert len(frame) == 1001 and log.errors == 0
    assert len(log.blobs.list("predictions/m/")) <= 2  # one or two Parquet files, not one per request


def test_graceful_shutdown_loses_no_logged_prediction(home, model_dir) -> None:
    settings = Settings.load(home=str(home))
    with serve_process([str(model_dir), "--name", "m", "--reload-seconds", "0"]) as (url, proc), \
            httpx.Client() as http:
        ids = []
        for i in range(60):
            r = http.post(url + "/predict", json=[{**ROW, "km": float(i)}, ROW])
            assert r.status_code == 200
            ids += r.json()["ids"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful exit
    frame = read_predictions(settings, "m")
    assert len(frame) == 120
    assert sorted(frame["id"]) == sorted(ids)


def test_a_stuck_writer_does_not_grow_the_log_without_bound(settings, monkeypatch) -> None:
    log = PredictionLog(settings, flush_seconds=3600, max_rows=5)
    monkeypatch.setattr(log._wake, "set", lambda: None)  # the writer never catches up
    for i in range(80):
        log.record("m", "1", "primary", f"r{i}", {"km": [1.0]}, [2.0], 0.001, 1)
    assert log._rows == 50 and log.dropped == 30
    monkeypatch.undo()
    log.close()
    assert log.written == 50


def test_refused_requests_are_logged_and_a_monitor_counts_them(settings, model_dir) -> None:
    from datetime import UTC, datetime, timedelta

    from mloop.monitoring import create_monitor, run_monitor, series

    config = ServeConfig(endpoints=(EndpointConfig(name="m", uri=str(model_dir)),), reload_seconds=0,
                         log_flush_seconds=0.1)
    with running(config, settings) as server:
        for _ in range(6):
            assert server.post("/predict", [ROW]).status_code == 200
        assert server.post("/predict", [{**ROW, "hour": "late"}]).status_code == 422
        assert server.post("/predict", content=b"{not json", headers={"content-type": "application/json"}) \
            .status_code == 400
    assert len(read_predictions(settings, "m")) == 6  # the predictions' log holds predictions only
    create_monitor("m-1h", "m", window="1h", settings=settings)
    run_monitor("m-1h", now=datetime.now(UTC) + timedelta(hours=2), settings=settings)
    figures = series("m-1h", ["requests", "errors", "error_rate"], settings=settings)
    totals = figures.groupby("metric")["value"].sum()
    assert totals["requests"] == 6 and totals["errors"] == 2
    by_window = figures.pivot_table(index="start", columns="metric", values="value", aggfunc="sum")
    expected = by_window["errors"] / (by_window["requests"] + by_window["errors"])
    assert (by_window["error_rate"] - expected).abs().max() < 1e-12  # 0.25 unless the hour turned meanwhile
