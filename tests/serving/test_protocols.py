"""Every protocol against a real server on 127.0.0.1: /predict, MLflow /invocations, Open Inference Protocol v2."""

from __future__ import annotations

import httpx
import pytest

from mloop.serving import EndpointConfig, ServeConfig
from tests.serving.conftest import ROW, running, save_trip_model

ROWS = [ROW, {"hour": 23, "km": 10.0, "weather": "dry"}]
COLUMNS = ["hour", "km", "weather"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    from mloop.config import Settings

    tmp = tmp_path_factory.mktemp("protocols")
    settings = Settings.load(home=str(tmp / "home"))
    trips = save_trip_model(tmp / "trips", slope=2.0)
    other = save_trip_model(tmp / "other", slope=5.0)
    config = ServeConfig(endpoints=(EndpointConfig(name="trips", uri=str(trips)),
                                    EndpointConfig(name="other", uri=str(other))))
    with running(config, settings) as server:
        expected = server.state.endpoints["trips"].primary.model.predict_columns(
            {c: [r[c] for r in ROWS] for c in COLUMNS})
        yield server, expected


def _close(got: list[float], expected: list[float]) -> None:
    assert got == pytest.approx(expected, rel=1e-9)


def test_predict_accepts_records_a_record_and_columns(served) -> None:
    server, expected = served
    for body in (ROWS, {"records": ROWS}, {"columns": {c: [r[c] for r in ROWS] for c in COLUMNS}},
                 {c: [r[c] for r in ROWS] for c in COLUMNS}):
        r = server.post("/predict", body)
        assert r.status_code == 200, r.text
        data = r.json()
        _close(data["predictions"], expected)
        assert data["model"] == "trips" and len(data["ids"]) == 2 and data["ids"][0].endswith("-0")
        assert r.headers["x-prediction-id"] == data["ids"][0][:-2]
    single = server.post("/predict", ROW).json()
    _close(single["predictions"], expected[:1])


def test_several_models_by_name(served) -> None:
    server, expected = served
    trips = server.post("/predict/trips", [ROW]).json()["predictions"][0]
    other = server.post("/predict/other", [ROW]).json()["predictions"][0]
    assert trips == pytest.approx(expected[0]) and other > trips + 5  # slope 5 against slope 2 on 3.5 km
    missing = server.post("/predict/nope", [ROW])
    assert missing.status_code == 404 and "served: ['other', 'trips']" in missing.json()["message"]


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": COLUMNS, "data": [[r[c] for c in COLUMNS] for r in ROWS]}},
    {"dataframe_records": ROWS},
    {"instances": ROWS},
    {"instances": [[r[c] for c in COLUMNS] for r in ROWS]},
    {"inputs": {c: [r[c] for r in ROWS] for c in COLUMNS}},
    {"inputs": ROWS},
], ids=["dataframe_split", "dataframe_records", "instances-records", "instances-rows", "inputs-columns",
        "inputs-records"])
def test_invocations_speaks_mlflow_scoring_formats(served, body) -> None:
    server, expected = served
    r = server.post("/invocations", body)
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["predictions"]
    _close(r.json()["predictions"], expected)


def test_invocations_reads_csv(served) -> None:
    server, expected = served
    csv = "hour,km,weather\n8,3.5,rain\n23,10.0,dry\n"
    r = httpx.post(server.url + "/invocations", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    _close(r.json()["predictions"], expected)


def test_open_inference_protocol(served) -> None:
    server, expected = served
    named = {"id": "x", "inputs": [
        {"name": "hour", "shape": [2], "datatype": "INT64", "data": [8, 23]},
        {"name": "km", "shape": [2], "datatype": "FP64", "data": [3.5, 10.0]},
        {"name": "weather", "shape": [2], "datatype": "BYTES", "data": ["rain", "dry"]}]}
    r = server.post("/v2/models/trips/infer", named)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_name"] == "trips" and out["outputs"][0]["shape"] == [2]
    assert out["outputs"][0]["datatype"] == "FP64"
    _close(out["outputs"][0]["data"], expected)
    tensor = {"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "BYTES",
                          "data": [[r[c] for c in COLUMNS] for r in ROWS]}]}
    _close(server.post("/v2/models/trips/infer", tensor).json()["outputs"][0]["data"], expected)
    meta = server.get("/v2/models/trips").json()
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [("hour", "INT64"), ("km", "FP64"),
                                                                    ("weather", "BYTES")]
    assert server.get("/v2/models/trips/ready").json()["ready"] is True
    assert server.get("/v2/models/nope/ready").status_code == 404
    assert server.get("/v2/health/ready").status_code == 200
    assert server.get("/v2/health/live").json() == {"live": True}


def test_health_schema_metrics_and_docs(served) -> None:
    server, _ = served
    assert server.get("/health/live").json() == {"status": "live"}
    assert server.get("/health/ready").json() == {"status": "ready"}
    schema = server.get("/schema").json()
    assert [c["name"] for c in schema["inputs"]] == COLUMNS and schema["name"] == "trips"
    assert server.get("/schema/other").json()["name"] == "other"
    server.post("/predict", ROWS)
    server.post("/predict", {"hour": "x"})
    text = server.get("/metrics").text
    for needle in ('mloop_requests_total{model="trips",version="', 'route="/predict",status="200"}',
                   'status="422"}', "mloop_request_latency_seconds_bucket{", "mloop_batch_size_bucket{",
                   'mloop_model_version{model="trips",role="primary"', "mloop_request_errors_total{"):
        assert needle in text, needle
    spec = server.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/predict/trips" in spec["paths"]
    assert spec["components"]["schemas"]["trips.record"]["properties"]["hour"]["type"] == "integer"
    assert "swagger-ui" in server.get("/docs").text
