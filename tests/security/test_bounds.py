"""Inputs that used to break mloop get a 4xx (InvalidInputError in the SDK) naming the field and the limit.

Each case runs over a real server on 127.0.0.1 and through the SDK, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.registry.rules import Rule
from mloop.store.sql import open_database
from mloop.tracking import _tables as t
from mloop.tracking.client import TrackingClient
from tests.server.conftest import LiveServer, serve

MAX_DEPTH = 32  # mloop.tracking._values.MAX_JSON_DEPTH


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[LiveServer]:
    yield from serve(Settings.load(home=str(tmp_path / "server-home"), db_url=db_url))


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api", timeout=60) as http:
        yield http


@pytest.fixture
def sdk(tmp_path: Path, db_url: str) -> TrackingClient:
    """The SDK straight on the database (the same database the server uses)."""
    return TrackingClient(Settings.load(home=str(tmp_path / "sdk-home"), db_url=db_url))


def new_run(api: httpx.Client, experiment: str = "bounds") -> tuple[str, str]:
    exp = api.post("/experiments", json={"name": experiment})
    assert exp.status_code == 201, exp.text
    run = api.post("/runs", json={"experiment_id": exp.json()["experiment_id"]})
    assert run.status_code == 201, run.text
    return exp.json()["experiment_id"], run.json()["run_id"]


def assert_refused(answer: httpx.Response, field: str, *words: str) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text[:300]
    error = answer.json()
    assert error["field"] == field, error
    for word in words:
        assert word in error["message"], error["message"][:300]
    return error


# ---------------------------------------------------------------- JSON values: depth and size
def test_deep_param_is_refused_and_the_run_stays_readable(api: httpx.Client, server: LiveServer,
                                                          sdk: TrackingClient) -> None:
    exp_id, run_id = new_run(api)
    answer = api.post(f"/runs/{run_id}/params", content=json.dumps({"params": {"deep": nested(900)}}),
                      headers={"content-type": "application/json"})
    assert_refused(answer, "params.deep", f"at most {MAX_DEPTH} levels")
    assert api.get(f"/runs/{run_id}").status_code == 200
    assert api.post("/runs/search", json={"experiment_ids": [exp_id]}).status_code == 200
    ok = {"shallow": {"layers": [64, 32], "opt": {"name": "adam", "betas": [0.9, 0.99]}}, "near": nested(MAX_DEPTH)}
    assert api.post(f"/runs/{run_id}/params", json={"params": ok}).status_code == 200
    assert api.get(f"/runs/{run_id}").json()["params"] == ok

    with sdk.start_run("bounds") as run, pytest.raises(InvalidInputError) as caught:
        run.log_param("deep", nested(MAX_DEPTH + 1))
    assert caught.value.field == "params.deep"


def test_deep_param_is_refused_before_it_leaves_a_remote_sdk(server: LiveServer, tmp_path: Path) -> None:
    remote = TrackingClient(Settings.load(home=str(tmp_path / "remote"), tracking_uri=server.url))
    with remote.start_run("bounds") as run:
        for depth in (MAX_DEPTH + 1, 300):  # 300: past orjson's own limit, which used to raise its own error
            with pytest.raises(InvalidInputError) as caught:
                run.log_param("deep", nested(depth))
            assert caught.value.field == "params.deep"
        run.log_param("fine", {"a": [1, 2]})
    assert remote.get_run(run.run_id).params == {"fine": {"a": [1, 2]}}


def test_an_int_param_past_float_range_is_refused(api: httpx.Client, server: LiveServer, tmp_path: Path) -> None:
    """10**400 was a 500 (float() overflowed); stored, no remote SDK could read its run (orjson refuses it)."""
    exp_id, run_id = new_run(api)
    huge = "1" + "0" * 400
    answer = api.post(f"/runs/{run_id}/params", content=f'{{"params": {{"huge": {huge}}}}}',
                      headers={"content-type": "application/json"})
    assert_refused(answer, "params.huge", "1.8e308")
    inside = api.post(f"/runs/{run_id}/params", content=f'{{"params": {{"list": [1, {{"a": {huge}}}]}}}}',
                      headers={"content-type": "application/json"})
    assert_refused(inside, "params.list", "1.8e308")
    assert api.post(f"/runs/{run_id}/params", json={"params": {"big": 2**70}}).status_code == 200
    remote = TrackingClient(Settings.load(home=str(tmp_path / "remote"), tracking_uri=server.url))
    assert remote.get_run(run_id).params["big"] == 2**70
    with remote.start_run("bounds") as run, pytest.raises(InvalidInputError) as caught:
        run.log_param("huge", 10**400)
    assert caught.value.field == "params.huge"


def test_a_deep_param_stored_before_the_bound_reads_back_as_text(api: httpx.Client, db_url: str,
                                                                  sdk: TrackingClient) -> None:
    exp_id, run_id = new_run(api)
    stored = json.dumps(nested(900))
    with open_database(db_url).write() as conn:  # what the old server accepted
        conn.execute(insert(t.params).values(run_id=run_id, key="deep", value=stored, vtype="json", num=None))
    got = api.get(f"/runs/{run_id}")
    assert got.status_code == 200, got.text[:300]
    assert got.json()["params"]["deep"] == stored
    found = api.post("/runs/search", json={"experiment_ids": [exp_id]})
    assert found.status_code == 200, found.text[:300]
    assert sdk.get_run(run_id).params["deep"] == stored
    assert sdk.search_runs("bounds")["params.deep"].tolist() == [stored]


def test_deep_values_in_dict_artifacts_and_model_metadata_are_refused(sdk: TrackingClient, tmp_path: Path) -> None:
    from mloop.registry import save_model

    with sdk.start_run("bounds") as run:
        with pytest.raises(InvalidInputError) as caught:
            run.log_dict({"deep": nested(900)}, "deep.json")
        assert caught.value.field == "data"
        assert run.log_dict({"fine": [1]}, "fine.json").path == "fine.json"
    with pytest.raises(InvalidInputError) as caught:
        save_model(_Doubler(), tmp_path / "m", flavor="python", metadata={"deep": nested(900)})
    assert caught.value.field == "metadata"


class _Doubler:
    def predict(self, frame: Any) -> Any:
        return frame


# ---------------------------------------------------------------- NUL bytes in text
@pytest.mark.parametrize(("path", "body", "field"), [
    ("/runs/{run}/tags", {"tags": {"note": "a\x00b"}}, "tags.note"),
    ("/runs/{run}/params", {"params": {"p": "a\x00b"}}, "params.p"),
    ("/runs/{run}", {"description": "a\x00b"}, "description"),
    ("/experiments", {"name": "nul", "tags": {"team": "\x00"}}, "tags.team"),
    ("/runs", {"experiment_id": "{exp}", "tags": {"t": "\x00"}}, "tags.t"),
    ("/registry/models", {"name": "m", "tags": {"t": "x\x00"}}, "tags.t"),
    ("/registry/models", {"name": "m", "description": "\x00"}, "description"),
])
def test_nul_bytes_are_refused_alike_on_every_backend(api: httpx.Client, path: str, body: dict[str, Any],
                                                      field: str) -> None:
    exp_id, run_id = new_run(api)
    body = json.loads(json.dumps(body).replace("{exp}", exp_id))
    method = api.patch if path == "/runs/{run}" else api.post
    answer = method(path.replace("{run}", run_id), json=body)
    assert_refused(answer, field, "NUL")
    assert api.get(f"/runs/{run_id}").status_code == 200  # and the server goes on


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("GET", "/runs/ab%00cd", None, "run_id"),
    ("GET", "/experiments/by-name/a%00b", None, "name"),
    ("GET", "/datasets/a%00/runs", None, "digest"),
    ("POST", "/heartbeat", {"run_ids": ["a\x00"]}, "run_id"),
    ("POST", "/runs/search", {"filter": "tags.team = 'x\x00'"}, "filter"),
    ("GET", "/registry/models/a%00", None, "name"),
    ("GET", "/registry/models/a%00/aliases/champion", None, "name"),
    ("GET", "/features/definitions/a%00", None, "name"),
])
def test_nul_bytes_that_only_reach_a_query_are_refused_alike(api: httpx.Client, method: str, path: str,
                                                             body: dict[str, Any] | None, field: str) -> None:
    """Text that is never stored (an id in a URL, a filter's value) used to be a 500 on PostgreSQL."""
    answer = api.request(method, path, json=body) if body is not None else api.request(method, path)
    assert_refused(answer, field, "NUL")


def test_a_metric_batch_takes_only_full_run_ids(api: httpx.Client) -> None:
    """Points go to the store in one COPY on PostgreSQL, past the text check: a NUL in a run id was a 500."""
    _, run_id = new_run(api)
    for bad in ("a\x00", run_id[:31] + "\x00", "ABC"):
        answer = api.post("/metrics/batch", json={"run_ids": [bad], "keys": ["loss"], "values": [1.0],
                                                   "steps": [0], "timestamps": [0]})
        assert answer.status_code == 422 and answer.json()["field"].startswith("run_ids"), answer.text
    assert api.post("/metrics/batch", json={"run_ids": [run_id], "keys": ["loss"], "values": [1.0],
                                            "steps": [0], "timestamps": [0]}).status_code == 200


def test_nul_bytes_are_refused_by_the_sdk(sdk: TrackingClient) -> None:
    with sdk.start_run("bounds") as run:
        with pytest.raises(InvalidInputError) as caught:
            run.set_tag("note", "a\x00b")
        assert caught.value.field == "tags.note"
        with pytest.raises(InvalidInputError):
            run.log_param("p", "\x00")
        run.set_tag("note", "fine")
    assert sdk.get_run(run.run_id).tags["note"] == "fine"


# ---------------------------------------------------------------- recursive parsers
def test_a_deeply_parenthesized_filter_is_refused(api: httpx.Client, sdk: TrackingClient) -> None:
    exp_id, _ = new_run(api)
    deep = "(" * 3000 + "metrics.a < 1" + ")" * 3000
    assert_refused(api.post("/runs/search", json={"experiment_ids": [exp_id], "filter": deep[:9000]}),
                   "filter", "nested")
    nots = "not " * 2000 + "metrics.a < 1"
    assert_refused(api.post("/runs/search", json={"experiment_ids": [exp_id], "filter": nots}), "filter", "nested")
    with pytest.raises(InvalidInputError) as caught:
        sdk.search_runs("bounds", filter=deep)
    assert caught.value.field == "filter"
    # within the bound, the filter runs on the database (the SQL nests as deep as the filter)
    fine = "(" * 50 + "metrics.a < 1 or params.x = 'y'" + ")" * 50
    assert api.post("/runs/search", json={"experiment_ids": [exp_id], "filter": fine}).status_code == 200
    wide = " or ".join(f"metrics.m{i} < {i}" for i in range(400))
    assert api.post("/runs/search", json={"experiment_ids": [exp_id], "filter": wide}).status_code == 200


def test_a_deeply_parenthesized_rule_is_refused(api: httpx.Client) -> None:
    deep = "(" * 3000 + "metrics.mae < 1" + ")" * 3000
    for section in ("given", "when"):
        rule = {"name": "r", section: deep, "alias": "champion"}
        assert_refused(api.post("/registry/rules", json={"rule": rule}), section, "nested")
        with pytest.raises(InvalidInputError) as caught:
            Rule(name="r", **{section: "not " * 2000 + "metrics.mae < 1"})
        assert caught.value.field == section
    fine = {"name": "r", "when": "(" * 50 + "metrics.mae < 1" + ")" * 50, "alias": "champion"}
    assert api.post("/registry/rules", json={"rule": fine}).status_code == 201


def test_a_model_manifest_uploaded_with_deep_metadata_is_refused_on_register(api: httpx.Client,
                                                                            tmp_path: Path) -> None:
    """The uploader writes the manifest: its metadata is bounded when a version is registered from it."""
    import yaml
    from sklearn.dummy import DummyRegressor

    from mloop.registry import save_model

    folder = tmp_path / "model"
    save_model(DummyRegressor().fit([[0.0], [1.0]], [0.0, 1.0]), folder)
    manifest = yaml.safe_load((folder / "mloop-model.yaml").read_text())
    manifest["metadata"] = {"deep": nested(900)}
    (folder / "mloop-model.yaml").write_text(json.dumps(manifest))  # JSON is YAML, and dumps deep values
    _, run_id = new_run(api)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        put = api.put(f"/runs/{run_id}/artifacts/model/{name}", content=path.read_bytes())
        assert put.status_code == 201, put.text
    answer = api.post("/registry/models/deep/versions", json={"source": f"runs:/{run_id}/model"})
    assert_refused(answer, "manifest", f"at most {MAX_DEPTH} levels")
    assert api.get("/registry/models").status_code == 200
