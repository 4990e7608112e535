"""Bad input never reaches the model and never answers 500: 400 for bodies, 422 with one entry per field."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.serving import EndpointConfig, ServeConfig
from tests.serving.conftest import ROW, running, save_trip_model


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from mloop.config import Settings

    tmp = tmp_path_factory.mktemp("validation")
    config = ServeConfig(endpoints=(EndpointConfig(name="trips", uri=str(save_trip_model(tmp / "m", 2.0))),))
    with running(config, Settings.load(home=str(tmp / "home"))) as served:
        yield served


def _errors(server, body) -> list[dict]:
    r = server.post("/predict", body)
    assert r.status_code == 422, r.text
    data = r.json()
    assert data["error_code"] == "INVALID_INPUT"
    return data["errors"]


@pytest.mark.parametrize(("row", "field", "expected", "value", "says"), [
    ({"km": 3.5, "weather": "rain"}, "hour", "integer", None, "missing"),
    ({**ROW, "hour": 7.5}, "hour", "integer", 7.5, "expected integer, got 7.5"),
    ({**ROW, "hour": "7"}, "hour", "integer", "7", "expected integer, got '7'"),
    ({**ROW, "hour": True}, "hour", "integer", True, "expected integer, got True"),
    ({**ROW, "hour": 2**70}, "hour", "integer", 2**70, "expected integer"),
    ({**ROW, "km": "far"}, "km", "float", "far", "expected float, got 'far'"),
    ({**ROW, "km": None}, "km", "float", None, "null at row 0, but it is not nullable"),
    ({**ROW, "km": [1, 2]}, "km", "float", "[1, 2]", "expected float"),
    ({**ROW, "km": {"a": 1}}, "km", "float", "{'a': 1}", "expected float"),
    ({**ROW, "weather": 3}, "weather", "string", 3, "expected string, got 3"),
])
def test_each_kind_of_bad_field_is_named(server, row, field, expected, value, says) -> None:
    errors = _errors(server, [row])
    assert len(errors) == 1
    (error,) = errors
    assert error["field"] == field and error["expected"] == expected and says in error["message"]
    assert error["value"] == value


def test_every_bad_field_is_listed_with_its_row(server) -> None:
    rows = [ROW, {"hour": 77.5, "km": "x", "weather": None}]
    errors = _errors(server, rows)
    assert [(e["field"], e["row"]) for e in errors] == [("hour", 1), ("km", 1), ("weather", 1)]
    # the same through MLflow's format and the Open Inference Protocol
    r = server.post("/invocations", {"dataframe_records": rows})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["hour", "km", "weather"]
    r = server.post("/v2/models/trips/infer", {"inputs": [
        {"name": "hour", "shape": [1], "datatype": "INT64", "data": [1]},
        {"name": "km", "shape": [1], "datatype": "FP64", "data": ["x"]}]})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["km", "weather"]


def test_extra_fields_are_ignored(server) -> None:
    assert server.post("/predict", [{**ROW, "note": "not a feature"}]).status_code == 200


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/predict", b"{not json", 400, "MALFORMED_JSON"),
    ("/predict", b"", 400, "MALFORMED_JSON"),
    ("/predict", b"[1, 2]", 400, "BAD_REQUEST"),
    ("/predict", b"[]", 400, "BAD_REQUEST"),
    ("/predict", b"\"text\"", 400, "BAD_REQUEST"),
    ("/predict", b'{"columns": {"hour": [1, 2], "km": [1.0]}}', 400, "BAD_REQUEST"),
    ("/invocations", b'{"dataframe_split": {"columns": ["hour"], "data": [[1, 2]]}}', 400, "BAD_REQUEST"),
    ("/invocations", b'{"instances": [], "inputs": []}', 400, "BAD_REQUEST"),
    ("/invocations", b'{"something": 1}', 400, "BAD_REQUEST"),
    ("/v2/models/trips/infer", b'{"inputs": [{"name": "km", "shape": [2], "data": [1.0]}]}', 400, "BAD_REQUEST"),
    ("/v2/models/trips/infer", b'{"inputs": []}', 400, "BAD_REQUEST"),
    ("/feedback", b"{oops", 400, "MALFORMED_JSON"),
    ("/feedback", b'{"id": 1}', 422, "INVALID_INPUT"),
])
def test_bodies_that_follow_no_protocol_are_400(server, path, body, status, code) -> None:
    r = httpx.post(server.url + path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error_code"] == code and r.json()["message"]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                     | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                         st.sampled_from(["hour", "km", "weather", "records", "columns", "inputs", "instances",
                                          "dataframe_split", "dataframe_records", "data", "name", "shape", "x"]),
                         inner, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(["/predict", "/invocations", "/v2/models/trips/infer", "/feedback"]), body=_json)
def test_fuzzed_bodies_never_answer_500(server, path, body) -> None:
    r = httpx.post(server.url + path, json=body, timeout=10)
    assert r.status_code in (200, 400, 409, 422), (path, body, r.text)
    assert r.headers["content-type"].startswith("application/json")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(row=st.fixed_dictionaries({"hour": st.integers(-(2**64), 2**64) | st.floats(allow_nan=False,
                                                                                    allow_infinity=False),
                                  "km": st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
                                  "weather": st.text(max_size=5) | st.none()}))
def test_fuzzed_rows_are_predicted_or_rejected_with_fields(server, row) -> None:
    r = server.post("/predict", [row])
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert {e["field"] for e in r.json()["errors"]} <= {"hour", "km", "weather", "data"}


def test_large_requests_take_the_vectorized_path_with_the_same_errors(server) -> None:
    rows = [dict(ROW) for _ in range(2500)]
    assert server.post("/predict", rows).status_code == 200
    rows[2100] = {**ROW, "km": [1, 2]}
    rows[2200] = {**ROW, "hour": "x"}
    errors = _errors(server, rows)
    assert [(e["field"], e["row"]) for e in errors] == [("hour", 2200), ("km", 2100)]
