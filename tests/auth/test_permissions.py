"""Every route declares its permission, and each role gets exactly what the table declares."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import Any

from mloop.auth import Role
from mloop.config import Settings
from mloop.server import create_app
from mloop.server.permissions import permission_for
from tests.auth.conftest import ROLES, AuthServer


def routes(items: Any) -> Iterator[tuple[str, set[str]]]:
    """(path template, methods) of every route, through routers included in routers."""
    for route in items:
        if hasattr(route, "effective_candidates"):  # FastAPI's lazily included router
            yield from routes(route.effective_candidates())
        elif hasattr(route, "routes") and not hasattr(route, "methods"):  # a router or a mount
            yield from routes(route.routes) if route.routes else [(route.path, {"GET"})]
        else:
            yield route.path, set(route.methods or {"GET"})


def all_routes() -> list[tuple[str, str]]:
    app = create_app(Settings.load(home=tempfile.mkdtemp()))
    return sorted({(m, p) for p, methods in routes(app.routes) for m in methods if m != "HEAD"})


def test_every_route_declares_its_permission() -> None:
    found = all_routes()
    assert len(found) > 60  # the walk reached into every router
    undeclared = [f"{m} {p}" for m, p in found if permission_for(m, p) is None]
    assert not undeclared, f"add these to mloop/server/permissions.py RULES: {undeclared}"


def test_what_moves_models_and_deletes_for_good_needs_more_than_an_editor() -> None:
    assert permission_for("PUT", "/api/registry/models/{name}/aliases/{alias}").role == Role.MAINTAINER
    assert permission_for("POST", "/api/registry/approvals/{request_id}/approve").role == Role.MAINTAINER
    assert permission_for("POST", "/api/registry/environments/{env}/deployments").role == Role.MAINTAINER
    for method, path in (("POST", "/api/gc"), ("GET", "/api/registry/webhooks"), ("POST", "/api/registry/webhooks")):
        need = permission_for(method, path)
        assert need is not None and need.role == Role.ADMIN and need.server_wide
    assert permission_for("POST", "/api/runs/search").role == Role.VIEWER  # a read, though a POST
    assert permission_for("GET", "/api/undeclared/things") is None  # a router nobody declared is refused


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _expected(need: Any, who: str | None) -> str:
    if need.public:
        return "open"
    if who is None:
        return "401"
    if need.role is None or who == "root" or need.listing:  # a listing filters, for whoever calls it
        return "open"
    if need.server_wide or who == "stranger":
        return "403"
    return "open" if Role[who.upper()] >= need.role else "403"


def test_role_matrix(sqlite_auth_server: AuthServer) -> None:
    """Each route with each identity: anonymous 401, too small a role 403, enough passes the check (then the
    handler answers 2xx or, for the made-up ids used here, 404/409/422)."""
    clients = {who: sqlite_auth_server.client(who) for who in (None, *ROLES, "root", "stranger")}
    wrong = []
    for method, path in all_routes():
        need = permission_for(method, path)
        for who, client in clients.items():
            expected = _expected(need, who)
            body = {} if method in ("POST", "PUT", "PATCH") else None
            status = client.request(method, _concrete(path), json=body).status_code
            got = str(status) if status in (401, 403) else "open"
            if got != expected:
                wrong.append(f"{method} {path} as {who}: {status}, expected {expected}")
    for client in clients.values():
        client.close()
    assert not wrong, "\n".join(wrong)


def test_enough_role_gets_2xx(sqlite_auth_server: AuthServer) -> None:
    with sqlite_auth_server.client("viewer") as viewer, sqlite_auth_server.client("editor") as editor, \
            sqlite_auth_server.client("maintainer") as maintainer:
        assert editor.post("/api/registry/models", json={"name": "eta"}).status_code == 201
        assert viewer.get("/api/registry/models/eta").status_code == 200
        assert viewer.post("/api/registry/models", json={"name": "other"}).status_code == 403
        assert editor.post("/api/registry/environments", json={"env": "prod"}).status_code == 403
        assert maintainer.post("/api/registry/environments", json={"env": "prod"}).status_code == 201
        assert viewer.get("/api/auth/whoami").json()["roles"] == {"default": "viewer"}
        assert viewer.get("/api/auth/users").status_code == 403
    with sqlite_auth_server.client("root") as root:
        users = {u["name"]: u for u in root.get("/api/auth/users").json()}
        assert users["maintainer"]["roles"] == {"default": "maintainer"} and users["root"]["is_admin"]
        assert not any("mlp_" in str(u) for u in users.values())


def test_health_and_docs_stay_open(sqlite_auth_server: AuthServer) -> None:
    for who in ("stranger", None):
        with sqlite_auth_server.client(who) as client:
            assert client.get("/health").status_code == 200
            assert client.get("/openapi.json").status_code == 200
            listed = client.get("/api/experiments")
            # a stranger may list, and sees nothing: it holds a role in no project
            assert (listed.status_code, listed.json()) == ((401, listed.json()) if who is None else (200, []))
