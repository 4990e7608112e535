"""The registry's REST endpoints through a real mloop server on 127.0.0.1, errors as JSON 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mloop.config import Settings
from mloop.registry import RegistryClient
from tests.registry.conftest import log_version
from tests.server.conftest import serve


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The registry's settings; the webhook test names a receiver on this machine, which must be allowed."""
    return Settings.load(home=str(tmp_path / "h"), db_url=db_url, user="alice", webhook_allow_hosts="127.0.0.1")


@pytest.fixture
def api(settings: Settings, registry: RegistryClient, tracking, pipeline, frame) -> Iterator[httpx.Client]:
    for mae in (3.0, 2.0):
        log_version(tracking, pipeline, frame, metrics={"mae": mae})
    for server in serve(settings):
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield client


def test_models_versions_aliases(api: httpx.Client) -> None:
    assert [m["name"] for m in api.get("/api/registry/models").json()] == ["eta"]
    versions = api.get("/api/registry/models/eta/versions").json()
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["metrics"] == {"mae": 3.0}
    moved = api.put("/api/registry/models/eta/aliases/champion", json={"version": 2})
    assert moved.status_code == 200 and moved.json()["previous"] is None
    assert api.get("/api/registry/resolve", params={"uri": "models:/eta@champion"}).json()["version"] == 2
    conflict = api.put("/api/registry/models/eta/aliases/champion",
                       json={"version": 1, "expected": 1, "compare_and_set": True})
    assert conflict.status_code == 409 and conflict.json()["error_code"] == "CONFLICT"
    source = versions[0]["source"]
    created = api.post("/api/registry/models/eta/versions", json={"source": source, "tags": {"city": "sf"}})
    assert created.status_code == 201 and created.json()["version"] == 3
    lineage = api.get("/api/registry/models/eta/versions/1/lineage").json()
    digest = lineage["datasets"][0]["digest"]
    assert {v["version"] for v in api.get(f"/api/registry/datasets/{digest}/versions").json()} == {1, 2, 3}
    assert api.get("/api/registry/models/eta/versions/3/manifest").json()["flavor"] == "sklearn"
    assert api.get("/api/registry/models/eta/versions/3/extra/none.json").status_code == 404
    assert api.delete("/api/registry/models/eta/versions/3").status_code == 204


def test_environments_approvals_rules_audit(api: httpx.Client) -> None:
    assert api.post("/api/registry/environments", json={"env": "prod", "requires_approval": True}).status_code == 201
    pending = api.post("/api/registry/environments/prod/deployments", json={"name": "eta", "version": 1}).json()
    assert pending["kind"] == "approval_request" and pending["status"] == "pending"
    assert [p["id"] for p in api.get("/api/registry/approvals").json()] == [pending["id"]]
    done = api.post(f"/api/registry/approvals/{pending['id']}/approve", json={"comment": "ok"}).json()
    assert done["version"] == 1
    assert api.get("/api/registry/environments/prod/history").json()[0]["version"] == 1
    rule = {"name": "best", "when": "metrics.mae < 2.5", "alias": "champion", "select": ["metrics.mae asc"]}
    assert api.post("/api/registry/rules", json={"rule": rule}).json() == {"name": "best", "version": 1}
    selection = api.post("/api/registry/select", json={"rule": "best", "apply": True}).json()
    assert selection["winner"] == {"name": "eta", "version": 2} and selection["applied"]
    reasons = {c["version"]: c["reason"] for c in selection["candidates"]}
    assert reasons[1].startswith("when: metrics.mae < 2.5 is false")
    actions = [e["action"] for e in api.get("/api/registry/audit", params={"model": "eta"}).json()]
    assert actions[:2] == ["rule.applied", "alias.set"]


def test_bad_input_gets_4xx_json(api: httpx.Client) -> None:
    missing = api.get("/api/registry/models/nope")
    assert missing.status_code == 404 and missing.json()["field"] == "name"
    bad_rule = api.post("/api/registry/select", json={"rule": {"name": "r", "when": "metrics.mae <"}})
    assert bad_rule.status_code == 422 and "position 13" in bad_rule.json()["message"]
    unknown = api.post("/api/registry/select", json={"rule": {"name": "r", "when": "metrics.nope < 1"}})
    assert unknown.status_code == 422 and "unknown metric 'nope'" in unknown.json()["message"]
    extra = api.post("/api/registry/models", json={"name": "x", "colour": "red"})
    assert extra.status_code == 422 and extra.json()["error_code"] == "INVALID_INPUT"
    assert api.put("/api/registry/models/eta/aliases/champion", json={"version": 99}).status_code == 404
    assert api.get("/api/registry/resolve", params={"uri": "nonsense"}).status_code == 422
    guarded = api.put("/api/registry/models/eta/aliases/champion", json={"version": 1})
    assert guarded.status_code == 200
    assert api.delete("/api/registry/models/eta/versions/1").status_code == 409


def test_the_rest_of_the_endpoints(api: httpx.Client) -> None:
    created = api.post("/api/registry/models", json={"name": "rest-model", "description": "d", "tags": {"t": "1"}})
    assert created.status_code == 201 and created.json()["tags"] == {"t": "1"}
    patched = api.patch("/api/registry/models/rest-model", json={"description": "new", "tags": {"team": "maps"}})
    assert patched.json()["description"] == "new" and patched.json()["tags"] == {"t": "1", "team": "maps"}
    assert api.get("/api/registry/models/rest-model").json()["owner"] == "alice"
    assert api.delete("/api/registry/models/rest-model").status_code == 204
    assert api.get("/api/registry/models/rest-model").status_code == 404
    version = api.patch("/api/registry/models/eta/versions/1", json={"tags": {"city": "sf"}}).json()
    assert version["tags"] == {"city": "sf"} and api.get("/api/registry/models/eta/versions/1").json()["tags"]
    api.put("/api/registry/models/eta/aliases/challenger", json={"version": 1})
    assert api.get("/api/registry/models/eta/aliases/challenger").json()["version"] == 1
    assert api.delete("/api/registry/models/eta/aliases/challenger").status_code == 204
    assert api.get("/api/registry/models/eta/aliases/challenger").status_code == 404
    api.post("/api/registry/environments", json={"env": "prod", "requires_approval": True})
    assert [e["env"] for e in api.get("/api/registry/environments").json()] == ["prod"]
    request = api.post("/api/registry/environments/prod/deployments", json={"name": "eta", "version": 2}).json()
    rejected = api.post(f"/api/registry/approvals/{request['id']}/reject", json={"comment": "bias"}).json()
    assert rejected["status"] == "rejected" and rejected["comment"] == "bias"
    assert api.get("/api/registry/approvals").json() == []
    again = api.post(f"/api/registry/approvals/{request['id']}/approve", json={})
    assert again.status_code == 409
    hook = api.post("/api/registry/webhooks", json={"url": "http://127.0.0.1:9/x", "secret": "0123456789abcdef",
                                                   "events": ["alias.set"]})
    assert hook.status_code == 201 and [h["id"] for h in api.get("/api/registry/webhooks").json()] == [1]
    assert api.get(f"/api/registry/webhooks/{hook.json()['id']}/deliveries").status_code == 200
    rule = {"name": "r", "when": "metrics.mae < 5", "alias": "champion"}
    api.post("/api/registry/rules", json={"rule": rule})
    api.post("/api/registry/rules", json={"rule": {**rule, "select": "metrics.mae asc"}})
    assert api.get("/api/registry/rules").json()[0]["version"] == 2
    assert api.get("/api/registry/rules/r", params={"version": 1}).json()["select"] == ["newest"]
    assert api.get("/api/registry/rules/r").json()["select"] == ["metrics.mae asc"]
    rejected_audit = api.get("/api/registry/audit", params={"action": "approval.rejected"}).json()
    assert rejected_audit[0]["after"]["comment"] == "bias" and rejected_audit[0]["actor"] == "alice"
    assert {e["action"] for e in api.get("/api/registry/audit", params={"limit": 3}).json()} <= {
        "rule.saved", "webhook.added", "approval.rejected"}


BAD_INPUT = [
    ("post", "/api/registry/select", {"rule": {"name": "r", "select": 5}}, 422, "select"),
    ("post", "/api/registry/select", {"rule": {"name": "r", "environment": 5}}, 422, "environment"),
    ("post", "/api/registry/select", {"rule": {"name": "r", "when": "metrics.mae < 'a'"}}, 422, "when"),
    ("post", "/api/registry/select", {"rule": {"name": "r", "whenn": "x"}}, 422, "whenn"),
    ("post", "/api/registry/select", {"rule": "name: r\nwhen: [1"}, 422, "rule"),
    ("post", "/api/registry/select", {"rule": {"name": "r"}, "apply": True}, 422, "rule"),
    ("post", "/api/registry/rules", {"rule": {"name": "r", "given": "tags.x = "}}, 422, "given"),
    ("get", "/api/registry/rules/nope", None, 404, "rule"),
    ("post", "/api/registry/models/eta/versions", {"source": "runs:/abc/model"}, 422, "uri"),
    ("post", "/api/registry/models/eta/versions", {"source": "/"}, 422, "source"),
    ("post", "/api/registry/models", {"name": ""}, 422, "name"),
    ("patch", "/api/registry/models/eta", {"tags": {"": "v"}}, 422, "tag key"),
    ("put", "/api/registry/models/eta/aliases/bad alias", {"version": 1}, 422, "alias"),
    ("put", "/api/registry/models/eta/aliases/champion", {"version": 0}, 422, "version"),
    ("get", "/api/registry/resolve?uri=models:/eta@none", None, 404, "alias"),
    ("post", "/api/registry/environments/nope/deployments", {"name": "eta", "version": 1}, 404, "env"),
    ("get", "/api/registry/environments/nope/history", None, 404, "env"),
    ("post", "/api/registry/approvals/99/approve", {}, 404, "request_id"),
    ("get", "/api/registry/audit?action=nope", None, 422, "action"),
    ("get", "/api/registry/datasets/xyz/versions", None, 422, "digest"),
    ("post", "/api/registry/webhooks", {"url": "ftp://x", "secret": "0123456789abcdef"}, 422, "url"),
]


def test_bad_input_names_field_value_and_expected(api: httpx.Client) -> None:
    for method, url, body, status, field in BAD_INPUT:
        response = getattr(api, method)(url, **({"json": body} if body is not None else {}))
        case = f"{method} {url} {body}: {response.text}"
        assert response.status_code == status, case
        answer = response.json()
        assert answer["field"] == field and answer["error_code"] in ("INVALID_INPUT", "NOT_FOUND"), case
        assert answer["message"], case
