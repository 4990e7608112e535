"""Authentication and permissions of ``mloop server``: one ASGI layer in front of every route.

With ``auth`` on, each request names a token (``Authorization: Bearer mlp_...``); the layer finds its identity,
works out the project the request touches (from the path: a model, an experiment, a run, an approval request)
and checks the role that ``mloop.server.permissions`` declares for the route. The identity rides in the request
state, so handlers hand it to the capabilities as their actor (``actor_of``). Being in front of the router, it also
covers routes that other routers add later, and mounted apps: nothing reaches a handler undeclared.

Token lookups are cached for ``TOKEN_CACHE_SECONDS`` by the token's sha256: a revoked or expired token, a disabled
user or a changed role takes effect within that time. Tokens are never logged nor echoed back.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import anyio.to_thread
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mloop.auth.cache import TtlCache
from mloop.auth.projects import project_of
from mloop.auth.roles import DEFAULT_PROJECT, Identity
from mloop.auth.store import AuthStore
from mloop.auth.tokens import digest_of
from mloop.errors import AuthenticationError, MloopError, PermissionDeniedError
from mloop.server.permissions import Need, permission_for

__all__ = ["TOKEN_CACHE_SECONDS", "AuthLayer", "actor_of", "identity_of", "install_auth", "router"]

TOKEN_CACHE_SECONDS = 10.0
_MAX_TOKEN_CHARS = 256
# where the path names the resource whose project decides (kind, pattern with the key as group 1)
_RESOURCES = (
    ("model", re.compile(r"/api/registry/models/([^/]+)")),
    ("approval", re.compile(r"/api/registry/approvals/([^/]+)")),
    ("experiment", re.compile(r"/api/experiments/(?!by-name/)([^/]+)")),
    ("run", re.compile(r"/api/runs/(?!search$)([^/]+)")),
)


router = APIRouter(prefix="/auth", tags=["auth"])


@router.get("/whoami")
def whoami(request: Request) -> dict[str, Any]:
    """Who the server takes the caller for, with its roles (``auth`` false: the server checks no token)."""
    identity = identity_of(request)
    if identity is None:
        return {"name": request.app.state.settings.user, "kind": "user", "auth": False, "is_admin": True,
                "roles": {}}
    return {"name": identity.name, "kind": identity.kind, "auth": True, "is_admin": identity.is_admin,
            "roles": {project: role.label for project, role in identity.roles.items()}}


def identity_of(request: Request) -> Identity | None:
    """The authenticated identity of ``request`` (None when the server runs without auth)."""
    return request.scope.get("state", {}).get("identity")


def actor_of(request: Request, fallback: str) -> str:
    """The audit actor of ``request``: its identity's name with auth on, else ``fallback``."""
    identity = identity_of(request)
    return fallback if identity is None else identity.name


class AuthLayer:
    """ASGI middleware: 401 without a valid token, 403 without the declared role, else the identity in state."""

    def __init__(self, app: ASGIApp, db_url: str) -> None:
        self.app = app
        self.store = AuthStore(db_url)
        self.tokens = TtlCache(TOKEN_CACHE_SECONDS)
        self.projects = TtlCache(TOKEN_CACHE_SECONDS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            identity = await self._check(scope)
        except MloopError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
            await JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)(scope, receive, send)
            return
        if identity is not None:
            scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope) -> Identity | None:
        method, path = scope["method"], scope["path"]
        need = permission_for(method, path)
        if need is None:
            raise PermissionDeniedError(f"{method} {path} declares no permission, so no one may call it.")
        if need.public:
            return None
        identity = await self._identity(scope)
        await self._allow(identity, need, method, path)
        return identity

    async def _identity(self, scope: Scope) -> Identity:
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("This server needs a token: run `mloop login --server URL` or set "
                                      "MLOOP_TOKEN (sent as 'Authorization: Bearer <token>').")
        token = token.strip()[:_MAX_TOKEN_CHARS]
        key = digest_of(token)
        found = self.tokens.get(key, False)
        if found is False:
            found = await anyio.to_thread.run_sync(self.store.authenticate, token)
            self.tokens.put(key, found)
        if found is None:
            raise AuthenticationError("The token is unknown, expired or revoked, or its user is disabled; "
                                      "ask an admin for a new one (`mloop auth tokens create`).")
        return found  # type: ignore[no-any-return]

    async def _allow(self, identity: Identity, need: Need, method: str, path: str) -> None:
        if need.role is None:
            return
        if need.server_wide:
            if not identity.is_admin:
                raise PermissionDeniedError(f"{method} {path} needs a server admin; '{identity.name}' is not one.")
            return
        project = await self._project(path)
        held = identity.role_in(project)
        if held is None or held < need.role:
            has = "no role" if held is None else f"the role {held.label}"
            raise PermissionDeniedError(f"{method} {path} needs the role {need.role.label} in project '{project}'; "
                                        f"'{identity.name}' has {has} there (`mloop auth grant`).")

    async def _project(self, path: str) -> str:
        for kind, pattern in _RESOURCES:
            match = pattern.match(path)
            if match:
                key = (kind, unquote(match.group(1)))
                project = self.projects.get(key)
                if project is None:
                    project = await anyio.to_thread.run_sync(self._lookup_project, *key)
                    self.projects.put(key, project)
                return str(project)
        return DEFAULT_PROJECT

    def _lookup_project(self, kind: str, key: str) -> str:
        with self.store.db.read() as conn:
            return project_of(conn, kind, key)


def install_auth(app: Any, db_url: str) -> None:
    """Put the auth layer in front of ``app``'s routes."""
    app.add_middleware(AuthLayer, db_url=db_url)
