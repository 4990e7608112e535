"""Authentication and permissions of ``mloop server``: one ASGI layer in front of every route.

With ``auth`` on, each request names a token (``Authorization: Bearer mlp_...``); the layer finds its identity,
works out the projects the request touches (``mloop.server.targets``: from the path, and from the JSON body for
the few routes that name their target there) and checks the role that ``mloop.server.permissions`` declares
for the route. The identity rides in the request state, so handlers hand it to the capabilities as their actor
(``actor_of``). Being in front of the router, it also covers routes that other routers add later, and mounted
apps: nothing reaches a handler undeclared.

Token lookups are cached for ``TOKEN_CACHE_SECONDS`` by the token's sha256: a revoked or expired token, a disabled
user or a changed role takes effect within that time. Tokens are never logged nor echoed back.
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mloop.auth.cache import TtlCache
from mloop.auth.projects import project_of
from mloop.auth.roles import DEFAULT_PROJECT, Identity
from mloop.auth.store import AuthStore
from mloop.auth.tokens import digest_of
from mloop.errors import AuthenticationError, MloopError, PermissionDeniedError
from mloop.server.permissions import Need, permission_for
from mloop.server.sessions import CSRF_HEADER, BrowserSessions, cookie_of, session_payload
from mloop.server.targets import Target, body_targets, path_targets, query_targets, reads_body

__all__ = ["TOKEN_CACHE_SECONDS", "AuthLayer", "actor_of", "identity_of", "install_auth", "router"]

TOKEN_CACHE_SECONDS = 10.0
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_TOKEN_CHARS = 256

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get("/whoami")
def whoami(request: Request) -> dict[str, Any]:
    """Who the server takes the caller for, with its roles (``auth`` false: the server checks no token)."""
    identity = identity_of(request)
    if identity is None:
        return {"name": request.app.state.settings.user, "kind": "user", "auth": False, "is_admin": True,
                "roles": {}}
    return {"name": identity.name, "kind": identity.kind, "auth": True, "is_admin": identity.is_admin,
            "roles": {project: role.label for project, role in identity.roles.items()},
            **session_payload(request.scope)}


@router.get("/users")
def list_users(request: Request) -> list[dict[str, Any]]:
    """Users and service accounts with their roles (server admins only; they are managed with `mloop auth`)."""
    return [dataclasses.asdict(u) for u in AuthStore(request.app.state.settings.db_url).list_users()]


def identity_of(request: Request) -> Identity | None:
    """The authenticated identity of ``request`` (None when the server runs without auth)."""
    return request.scope.get("state", {}).get("identity")


def actor_of(request: Request, fallback: str) -> str:
    """The audit actor of ``request``: its identity's name with auth on, else ``fallback``."""
    identity = identity_of(request)
    return fallback if identity is None else identity.name


class AuthLayer:
    """ASGI middleware: 401 without a valid token, 403 without the declared role, else the identity in state."""

    def __init__(self, app: ASGIApp, db_url: str, sessions: BrowserSessions | None = None) -> None:
        self.app = app
        self.store = AuthStore(db_url)
        self.sessions = sessions or BrowserSessions(db_url)
        self.tokens = TtlCache(TOKEN_CACHE_SECONDS)
        self.projects = TtlCache(TOKEN_CACHE_SECONDS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            identity, receive = await self._check(scope, receive)
        except MloopError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
            await JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)(scope, receive, send)
            return
        if identity is not None:
            scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope, receive: Receive) -> tuple[Identity | None, Receive]:
        method, path = scope["method"], scope["path"]
        need = permission_for(method, path)
        if need is None:
            raise PermissionDeniedError(f"{method} {path} declares no permission, so no one may call it.")
        if need.public:
            return None, receive
        identity = await self._identity(scope)
        targets = path_targets(path) + query_targets(path, scope.get("query_string", b""))
        if need.role is not None and not need.server_wide and not identity.is_admin and reads_body(method, path):
            body, receive = await _buffered(receive)
            try:
                targets += body_targets(method, path, orjson.loads(body))
            except orjson.JSONDecodeError:
                pass  # the handler answers 422 for it
        await self._allow(identity, need, method, path, targets)
        return identity, receive

    async def _identity(self, scope: Scope) -> Identity:
        headers = dict(scope["headers"])
        header = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if not header:
            secret = cookie_of(headers)
            if secret is not None:
                return await self._session_identity(scope, headers, secret)
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("This server needs a token: run `mloop login --server URL` or set "
                                      "MLOOP_TOKEN (sent as 'Authorization: Bearer <token>'); in a browser, "
                                      "sign in at /login.")
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

    async def _session_identity(self, scope: Scope, headers: dict[bytes, bytes], secret: str) -> Identity:
        """The identity of a browser session; a change also needs the session's CSRF secret in its header."""
        found = await self.sessions.identity(secret)
        if found is None:
            raise AuthenticationError("Your session has ended (signed out, expired, or its token was revoked); "
                                      "sign in again at /login.")
        identity, csrf = found
        if scope["method"] not in _READS:
            sent = headers.get(CSRF_HEADER.encode(), b"")
            if not hmac.compare_digest(sent, csrf.encode()):
                raise PermissionDeniedError(f"A change made with the session cookie needs the session's "
                                            f"{CSRF_HEADER} header, which only this server's pages have; this "
                                            "request did not carry it (a page of another origin?).",
                                            field=CSRF_HEADER)
        scope.setdefault("state", {})["session_csrf"] = csrf
        return identity

    async def _allow(self, identity: Identity, need: Need, method: str, path: str, targets: list[Target]) -> None:
        if need.role is None or identity.is_admin or (need.listing and not targets):
            return  # a listing shows each identity only its own projects (mloop.server.visibility)
        if need.server_wide:
            raise PermissionDeniedError(f"{method} {path} needs a server admin; '{identity.name}' is not one.")
        for project in await self._projects(targets):
            held = identity.role_in(project)
            if held is None or held < need.role:
                has = "no role" if held is None else f"the role {held.label}"
                raise PermissionDeniedError(f"{method} {path} needs the role {need.role.label} in project "
                                            f"'{project}'; '{identity.name}' has {has} there (`mloop auth grant`).")

    async def _projects(self, targets: list[Target]) -> set[str]:
        """The projects of ``targets`` (``default`` for none), looked up in one thread hop for the uncached."""
        found = {target: target[1] if target[0] == "project" else self.projects.get(target) for target in targets}
        missing = [target for target, project in found.items() if project is None]
        if missing:
            looked_up = await anyio.to_thread.run_sync(self._lookup_projects, missing)
            for target, project in looked_up.items():
                self.projects.put(target, project)
            found.update(looked_up)
        return {str(p) for p in found.values()} or {DEFAULT_PROJECT}

    def _lookup_projects(self, targets: list[Target]) -> dict[Target, str]:
        with self.store.db.read() as conn:
            return {(kind, key): project_of(conn, kind, key) for kind, key in targets}


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it to the app again (the edge has bounded its size)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def install_auth(app: Any, db_url: str) -> None:
    """Put the auth layer in front of ``app``'s routes; the sign-in routes share its browser sessions."""
    app.state.browser_sessions = BrowserSessions(db_url)
    app.add_middleware(AuthLayer, db_url=db_url, sessions=app.state.browser_sessions)
