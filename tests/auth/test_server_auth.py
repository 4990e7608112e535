"""`mloop server` with auth on: anonymous writes refused, the actor is the token's identity, approvals need
a second maintainer, revoked tokens stop working, projects come from tags, tokens never leak."""

from __future__ import annotations

import logging
import time

import pytest

from mloop.errors import AuthenticationError
from mloop.tracking._http import HttpTrackingRepository
from tests.auth.conftest import AuthServer


def test_anonymous_and_bad_tokens_are_refused(sqlite_auth_server: AuthServer) -> None:
    with sqlite_auth_server.client(None) as anonymous:
        for method, path in (("POST", "/api/experiments"), ("POST", "/api/registry/models"), ("POST", "/api/gc"),
                             ("GET", "/api/experiments")):
            answer = anonymous.request(method, path, json={"name": "x"})
            assert answer.status_code == 401 and answer.json()["error_code"] == "UNAUTHENTICATED"
            assert answer.headers["www-authenticate"] == "Bearer"
        bogus = "mlp_0123456789ab_" + "x" * 43
        answer = anonymous.post("/api/experiments", json={"name": "x"}, headers={"Authorization": f"Bearer {bogus}"})
        assert answer.status_code == 401 and bogus not in answer.text
    with sqlite_auth_server.client("root") as root:
        assert "x" not in [e["name"] for e in root.get("/api/experiments").json()]


def test_the_actor_is_the_token_identity(auth_server: AuthServer) -> None:
    with auth_server.client("editor") as editor, auth_server.client("maintainer") as maintainer:
        experiment = editor.post("/api/experiments", json={"name": "eta"}).json()["experiment_id"]
        run = editor.post("/api/runs", json={"experiment_id": experiment, "user": "mallory", "tags": {}}).json()
        assert run["user"] == "editor"  # not what the body claimed
        assert editor.post("/api/registry/models", json={"name": "eta"}).status_code == 201
        assert maintainer.patch("/api/registry/models/eta", json={"description": "d"}).status_code == 200
        audit = maintainer.get("/api/registry/audit", params={"model": "eta"}).json()
        assert {(a["action"], a["actor"]) for a in audit} == {("model.created", "editor"),
                                                             ("model.updated", "maintainer")}


def test_an_approval_by_its_requester_is_refused(auth_server: AuthServer) -> None:
    store = auth_server.store
    store.add_user("second")
    store.grant("second", "default", "maintainer")
    with auth_server.client("maintainer") as maintainer, auth_server.client("editor") as editor:
        second = auth_server.client(None)
        second.headers["Authorization"] = f"Bearer {store.create_token('second').text}"
        approvals = _pending_request(auth_server, maintainer)
        assert editor.post(f"/api/registry/approvals/{approvals}/approve", json={}).status_code == 403
        own = maintainer.post(f"/api/registry/approvals/{approvals}/approve", json={})
        assert own.status_code == 403 and "another maintainer must" in own.json()["message"]
        assert second.post(f"/api/registry/approvals/{approvals}/approve", json={}).status_code == 200
        second.close()
        audit = maintainer.get("/api/registry/audit", params={"action": "approval.approved"}).json()
        assert [a["actor"] for a in audit] == ["second"]


def _pending_request(auth_server: AuthServer, maintainer) -> int:  # type: ignore[no-untyped-def]
    """A version of 'eta' (a model trained on the diabetes data set) asked into the gated 'prod' by 'maintainer'."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from mloop._sdk import ActiveRun
    from mloop.tracking import TrackingClient

    diabetes = load_diabetes(as_frame=True)
    model = Ridge().fit(diabetes.data, diabetes.target)
    with TrackingClient(auth_server.server.settings).start_run("eta", run_class=ActiveRun) as run:
        assert isinstance(run, ActiveRun)
        run.log_model(model, name="eta", input_example=diabetes.data.head(3))
    assert maintainer.post("/api/registry/environments", json={"env": "prod", "requires_approval": True}
                           ).status_code == 201
    asked = maintainer.post("/api/registry/environments/prod/deployments", json={"name": "eta", "version": 1})
    assert asked.status_code == 201 and asked.json()["kind"] == "approval_request"
    return int(asked.json()["id"])


def test_a_revoked_token_stops_within_the_cache_time(sqlite_auth_server: AuthServer) -> None:
    token = sqlite_auth_server.tokens["viewer"]
    with sqlite_auth_server.client("viewer") as viewer:
        assert viewer.get("/api/experiments").status_code == 200
        sqlite_auth_server.store.revoke_token(token.split("_")[1])
        time.sleep(0.4)  # the server's token cache lives 0.3 s in these tests (10 s by default)
        assert viewer.get("/api/experiments").status_code == 401


def test_projects_come_from_tags(auth_server: AuthServer) -> None:
    store = auth_server.store
    store.add_user("fraud-dev")
    store.grant("fraud-dev", "fraud", "editor")
    with auth_server.client("root") as root, auth_server.client("editor") as editor, \
            auth_server.client(None) as dev:
        dev.headers["Authorization"] = f"Bearer {store.create_token('fraud-dev').text}"
        root.post("/api/registry/models", json={"name": "fraud-model", "tags": {"project": "fraud"}})
        assert dev.patch("/api/registry/models/fraud-model", json={"description": "x"}).status_code == 200
        moved = dev.patch("/api/registry/models/fraud-model", json={"tags": {"project": "default"}})
        assert moved.status_code == 403  # moving it needs a role in the project it would move to
        assert editor.get("/api/registry/models/fraud-model").status_code == 403  # editor of 'default' only
        assert dev.get("/api/experiments").json() == []  # no role in 'default': it lists none of its experiments
        # targets named in the body: the project tag of a new experiment, a run's experiment, a batch's runs
        assert dev.post("/api/experiments", json={"name": "plain"}).status_code == 403
        fraud = dev.post("/api/experiments", json={"name": "cards", "tags": {"project": "fraud"}})
        assert fraud.status_code == 201
        run = dev.post("/api/runs", json={"experiment_id": fraud.json()["experiment_id"]}).json()["run_id"]
        other = editor.post("/api/runs", json={"experiment_id": editor.post(
            "/api/experiments", json={"name": "eta"}).json()["experiment_id"]}).json()["run_id"]
        assert editor.post("/api/runs", json={"experiment_id": fraud.json()["experiment_id"]}).status_code == 403

        def batch(*run_ids: str) -> dict[str, object]:
            return {"run_ids": list(run_ids), "keys": ["auc"] * len(run_ids), "values": [0.9] * len(run_ids),
                    "steps": [0] * len(run_ids), "timestamps": [1] * len(run_ids)}

        assert dev.post("/api/metrics/batch", json=batch(run)).status_code == 200
        assert dev.post("/api/metrics/batch", json=batch(run, other)).status_code == 403  # one run is not theirs
        assert editor.post("/api/metrics/batch", json=batch(other)).status_code == 200
        assert editor.post("/api/metrics/batch", json=batch(run)).status_code == 403
        history = root.get(f"/api/runs/{run}/metrics/auc/history").json()
        assert history["values"] == [0.9]  # the refused batches stored nothing

def test_the_http_client_sends_the_token_and_it_is_never_logged(sqlite_auth_server: AuthServer, monkeypatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError, match="needs a token"):
        HttpTrackingRepository(sqlite_auth_server.url, retry_seconds=0).list_experiments()
    monkeypatch.setenv("MLOOP_TOKEN", sqlite_auth_server.tokens["editor"])
    repo = HttpTrackingRepository(sqlite_auth_server.url, retry_seconds=0)
    experiment = repo.create_experiment("through-http")
    assert repo.get_experiment(experiment.experiment_id).name == "through-http"
    assert sqlite_auth_server.tokens["editor"] not in caplog.text


def test_a_batch_that_hides_a_run_is_refused(sqlite_auth_server: AuthServer) -> None:
    """Run ids the layer cannot check (not strings, too many) fail the request instead of going unchecked."""
    with sqlite_auth_server.client("editor") as editor:
        for run_ids in (["a" * 32, None], ["a" * 32, ["b" * 32]], [f"{i:032x}" for i in range(1001)]):
            n = len(run_ids)
            answer = editor.post("/api/metrics/batch", json={"run_ids": run_ids, "keys": ["k"] * n,
                                                            "values": [1.0] * n, "steps": [0] * n,
                                                            "timestamps": [1] * n})
            assert answer.status_code == 422 and answer.json()["field"] == "run_ids"
