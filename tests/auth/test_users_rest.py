"""Users, roles and tokens over REST for server admins, and `mloop auth` through a remote server."""

from __future__ import annotations

import pytest

from tests.auth.conftest import AuthServer
from tests.auth.test_cli import run


def test_an_admin_manages_users_and_tokens_over_rest(sqlite_auth_server: AuthServer) -> None:
    s = sqlite_auth_server
    with s.client("root") as root, s.client("admin") as project_admin:
        # a project admin is not a server admin: users are the server's
        assert project_admin.post("/api/auth/users", json={"name": "eve", "admin": True}).status_code == 403
        assert root.post("/api/auth/users", json={"name": "ci", "service_account": True}).json()["kind"] == "service"
        assert root.post("/api/auth/users", json={"name": "ci"}).status_code == 409
        assert root.post("/api/auth/users", json={"name": "bad name!"}).status_code in (400, 422)
        granted = root.put("/api/auth/users/ci/roles/fraud", json={"role": "editor"}).json()
        assert granted["roles"] == {"fraud": "editor"}
        refused = root.put("/api/auth/users/ci/roles/fraud", json={"role": "boss"})
        assert refused.status_code == 422 and "boss" in refused.text and "maintainer" in refused.text
        made = root.post("/api/auth/users/ci/tokens", json={"label": "pipeline", "expires_in_seconds": 3600})
        assert made.status_code == 201
        token, prefix = made.json()["token"], made.json()["prefix"]
        listed = root.get("/api/auth/users/ci/tokens").json()
        assert [t["prefix"] for t in listed] == [prefix] and token not in str(listed)
        assert listed[0]["expires"] is not None and listed[0]["label"] == "pipeline"

        with s.client(None) as ci:
            ci.headers["Authorization"] = f"Bearer {token}"
            assert ci.get("/api/auth/whoami").json()["roles"] == {"fraud": "editor"}
            assert root.delete(f"/api/auth/users/admin/tokens/{prefix}").status_code == 404  # not admin's token
            assert root.delete(f"/api/auth/users/ci/tokens/{prefix}").status_code == 200
            _eventually_refused(ci)

        second = root.post("/api/auth/users/ci/tokens", json={}).json()["token"]
        assert root.post("/api/auth/users/ci/disabled", json={"disabled": True}).json()["disabled"] is True
        with s.client(None) as ci:
            ci.headers["Authorization"] = f"Bearer {second}"
            _eventually_refused(ci)
        assert root.delete("/api/auth/users/ci/roles/fraud").json()["had"] is True


def _eventually_refused(client) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + 5  # the server's token cache holds an identity for 0.3 s in these tests
    while client.get("/api/auth/whoami").status_code != 401:
        assert time.monotonic() < deadline, "the token still works"
        time.sleep(0.1)


def test_the_cli_manages_users_through_a_remote_server(sqlite_auth_server: AuthServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    s = sqlite_auth_server
    monkeypatch.setenv("MLOOP_TRACKING_URI", s.url)
    monkeypatch.setenv("MLOOP_TOKEN", s.tokens["root"])
    assert run("auth", "users", "add", "dana")[2] is None
    assert run("auth", "grant", "dana", "fraud", "viewer")[2] is None
    out, err, failed = run("auth", "tokens", "create", "dana", "--expires", "1d")
    assert failed is None and "not shown again" in err
    token = out.strip()
    assert s.store.authenticate(token).name == "dana"  # made by the server, in its database
    assert "fraud: viewer" in run("auth", "users", "list")[0]
    assert token.split("_")[1] in run("auth", "tokens", "list", "dana")[0]
    assert run("auth", "tokens", "revoke", token.split("_")[1])[2] is None
    assert s.store.authenticate(token) is None
    # a token that is not a server admin's is refused by the server, with its reason
    monkeypatch.setenv("MLOOP_TOKEN", s.tokens["admin"])
    _, _, failed = run("auth", "users", "add", "mallory", "--admin")
    assert failed is not None and "server admin" in str(failed)
    assert "mallory" not in {u.name for u in s.store.list_users()}
