"""Deeply nested request bodies get a 400 naming where, on every protocol (they used to answer 500)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mloop.config import Settings
from mloop.serving import EndpointConfig, ServeConfig
from tests.serving.conftest import ROW, running, save_trip_model


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


MAX_DEPTH = 32  # mloop.serving._payload.MAX_DEPTH
DEEP = nested(900)  # below orjson's own limit (1024), so the body parses and reaches mloop's code


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("bounds")
    config = ServeConfig(endpoints=(EndpointConfig(name="trips", uri=str(save_trip_model(tmp / "trips", 2.0))),))
    with running(config, Settings.load(home=str(tmp / "home"))) as server:
        yield server


@pytest.mark.parametrize(("path", "body", "where"), [
    ("/predict", {"records": [{**ROW, "hour": DEEP}]}, "body.records[0].hour"),
    ("/predict", {**ROW, "km": [DEEP]}, "body.km"),
    # a field the model ignores used to pass, then break the prediction log's whole flush (orjson stops at 254)
    ("/predict", [{**ROW, "note": DEEP}], "body[0].note"),
    ("/invocations", {"dataframe_records": [{**ROW, "weather": DEEP}]}, "body.dataframe_records[0].weather"),
    ("/v2/models/trips/infer", {"inputs": [{"name": "hour", "shape": [1], "datatype": "INT64", "data": DEEP}]},
     "body.inputs[0].data"),
])
def test_deep_bodies_are_refused_by_name(served, path: str, body: Any, where: str) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=served.url, timeout=30) as http:
        answer = http.post(path, json=body)
        assert answer.status_code == 400, answer.text[:300]
        error = answer.json()
        assert error["field"].startswith(where) and f"more than {MAX_DEPTH} levels" in error["message"]
        assert "Recursion" not in error["message"]
        # the kept-alive connection still serves the next request
        assert http.post("/predict", json=ROW).status_code == 200


def test_nesting_within_the_bound_still_parses(served) -> None:  # type: ignore[no-untyped-def]
    body = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "BYTES",
                        "data": [[ROW["hour"], ROW["km"], ROW["weather"]]]}]}
    assert served.post("/v2/models/trips/infer", body).status_code == 200


def test_a_deep_feedback_label_is_refused_by_name(served) -> None:  # type: ignore[no-untyped-def]
    prediction = served.post("/predict", ROW).json()["ids"][0]
    answer = served.post("/feedback", {"id": prediction, "label": DEEP})
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["field"].startswith("body.label")
    assert served.post("/feedback", {"id": prediction, "label": 1.0}).json() == {"accepted": 1}


@pytest.mark.parametrize("path", ["/predict", "/invocations", "/v2/models/trips/infer", "/feedback"])
@pytest.mark.parametrize("body", [None, 7, "text", True])
def test_a_scalar_body_is_a_400_not_a_500(served, path: str, body: Any) -> None:  # type: ignore[no-untyped-def]
    answer = httpx.post(served.url + path, content=json.dumps(body), headers={"content-type": "application/json"},
                        timeout=30)
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["error_code"] in ("BAD_REQUEST", "INVALID_INPUT"), answer.text[:300]
