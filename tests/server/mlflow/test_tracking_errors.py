"""Errors in MLflow's shape (``error_code``, ``message``, status), so the mlflow client raises what it would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mloop.config import Settings
from tests.server.conftest import LiveServer, serve

pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

API = "/api/2.0/mlflow"


@pytest.fixture
def http(mlflow_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mlflow_server.url + API, timeout=30) as client:
        yield client


def error_of(answer: httpx.Response) -> tuple[int, str, str]:
    body = answer.json()
    assert set(body) == {"error_code", "message", "field"}, body  # mlflow reads the first two
    return answer.status_code, body["error_code"], body["message"]


def raised(call, *args, **kwargs) -> MlflowException:  # type: ignore[no-untyped-def]
    with pytest.raises(MlflowException) as caught:
        call(*args, **kwargs)
    return caught.value


def test_missing_things_are_resource_does_not_exist(tracking_uri: str, http: httpx.Client) -> None:
    client = MlflowClient()
    assert raised(client.get_run, "f" * 32).error_code == "RESOURCE_DOES_NOT_EXIST"
    assert raised(client.get_experiment, "987654").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert raised(client.log_metric, "e" * 32, "x", 1.0).error_code == "RESOURCE_DOES_NOT_EXIST"
    status, code, message = error_of(http.get("/runs/get", params={"run_id": "f" * 32}))
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST") and "f" * 32 in message
    status, code, _ = error_of(http.get("/experiments/get-by-name", params={"experiment_name": "nope"}))
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")
    run = client.create_run(client.create_experiment("tags-gone"))
    assert raised(client.delete_tag, run.info.run_id, "never-set").error_code == "RESOURCE_DOES_NOT_EXIST"


def test_duplicate_experiment_is_resource_already_exists(tracking_uri: str) -> None:
    client = MlflowClient()
    client.create_experiment("twice")
    error = raised(client.create_experiment, "twice")
    assert error.error_code == "RESOURCE_ALREADY_EXISTS" and "twice" in error.message


def test_bad_input_is_invalid_parameter_value(tracking_uri: str, http: httpx.Client) -> None:
    client = MlflowClient()
    exp = client.create_experiment("bad-input")
    run_id = client.create_run(exp).info.run_id
    error = raised(client.search_runs, [exp], "metrics.rmse <<< 3")
    assert error.error_code == "INVALID_PARAMETER_VALUE" and "position" in error.message
    assert raised(client.search_runs, [exp], "attributes.status = 'DONE'").error_code == "INVALID_PARAMETER_VALUE"
    assert raised(client.search_runs, [exp], max_results=50_001).error_code == "INVALID_PARAMETER_VALUE"
    # what the client would refuse itself, sent by hand: the server names the field
    checks = [
        ("/runs/log-metric", {"run_id": run_id, "key": "x", "value": "lots", "timestamp": 0}, "value"),
        ("/runs/log-metric", {"run_id": run_id, "key": "../x", "value": 1, "timestamp": 0}, "key"),
        ("/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "v" * 6001}, "value"),
        ("/runs/set-tag", {"run_id": run_id, "key": "t", "value": "v" * 8001}, "value"),
        ("/runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 0}] * 1001},
         "metrics"),
        ("/runs/log-batch", {"run_id": run_id, "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]},
         "params"),
        ("/runs/log-metric", {"key": "x", "value": 1, "timestamp": 0}, "run_id"),
        ("/runs/update", {"run_id": run_id, "status": "SLEEPING"}, "status"),
        ("/runs/log-metric", {"run_id": run_id, "key": "x", "value": 1, "timestamp": 2**64}, "timestamp"),
    ]
    for path, body, field in checks:
        status, code, message = error_of(http.post(path, json=body))
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and field in message, (path, message)
    status, code, _ = error_of(http.post("/runs/log-batch", content=b"{not json",
                                         headers={"content-type": "application/json"}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert client.get_run(run_id).data.metrics == {}  # nothing of the refused requests was stored


def test_deleted_experiment_takes_no_runs(tracking_uri: str) -> None:
    client = MlflowClient()
    exp = client.create_experiment("gone")
    client.delete_experiment(exp)
    assert raised(client.create_run, exp).error_code == "INVALID_STATE"


@pytest.mark.parametrize("tamper", ["garbage", "edited", "foreign"])
def test_bad_page_token_is_invalid_parameter_value(tracking_uri: str, tamper: str) -> None:
    client = MlflowClient()
    exp = client.get_experiment_by_name("pages") or client.get_experiment(client.create_experiment("pages"))
    while len(client.search_runs([exp.experiment_id])) < 3:
        client.create_run(exp.experiment_id)
    token = client.search_runs([exp.experiment_id], max_results=1).token
    assert token
    body, mac = token.split(".")
    bad = {"garbage": "not-a-token", "edited": body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac,
           "foreign": token}[tamper]
    flt = "attributes.status = 'RUNNING'" if tamper == "foreign" else ""  # a token of another search
    error = raised(client.search_runs, [exp.experiment_id], flt, max_results=1, page_token=bad)
    assert error.error_code == "INVALID_PARAMETER_VALUE" and "page_token" in error.message


def test_oversized_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    settings = Settings.load(home=str(tmp_path / "home"), db_url=f"sqlite:///{tmp_path / 'meta.db'}",
                             max_request_bytes=100_000)
    for live in serve(settings):
        huge = {"run_id": "a" * 32, "tags": [{"key": f"t{i}", "value": "v" * 5000} for i in range(50)]}
        answer = httpx.post(live.url + API + "/runs/log-batch", json=huge, timeout=30)
        assert answer.status_code == 413 and "100,000" in answer.json()["message"]
        client = MlflowClient(tracking_uri=live.url)
        run_id = client.create_run(client.create_experiment("big")).info.run_id
        tags = [RunTag(f"t{i}", "v" * 5000) for i in range(50)]
        error = raised(client.log_batch, run_id, tags=tags)
        assert "at most 100,000 bytes" in error.message
        assert client.get_run(run_id).data.tags.get("t0") is None


def test_nul_bytes_and_overlong_ids_are_refused_not_a_500(tracking_uri: str, http: httpx.Client) -> None:
    run_id = MlflowClient().create_run("0").info.run_id
    dataset = {"name": "d", "digest": "abc", "source_type": "local", "source": "x"}
    for method, path, payload in [
        ("GET", "/runs/get", {"run_id": "ab\x00cd"}),
        ("GET", "/runs/get", {"run_id": "a" * 65}),
        ("GET", "/metrics/get-history", {"run_id": run_id, "metric_key": "m\x00"}),
        ("POST", "/runs/search", {"experiment_ids": ["0"], "filter": "tags.t = 'a\x00'"}),
        ("POST", "/runs/log-inputs", {"run_id": run_id, "datasets": [
            {"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "tr\x00ain"}]}]}),
        ("POST", "/runs/log-inputs", {"run_id": run_id, "datasets": [{"dataset": {**dataset, "name": "\x00"}}]}),
    ]:
        sent = http.request(method, path, params=payload) if method == "GET" else http.post(path, json=payload)
        status, code, _ = error_of(sent)
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), (path, payload, sent.text)
    assert MlflowClient().get_run(run_id).inputs.dataset_inputs == []
