"""Signing in to the web UI: ``POST /api/auth/login`` turns a token into a session cookie, ``/logout`` ends it.

The cookie (``mloop_session``) is HttpOnly (no script reads it), SameSite=Strict (another site's page cannot make
the browser send it), Secure when the request came over https, and holds a random session secret, never the
token. Changes made with the cookie also need the session's CSRF secret in the ``X-Mloop-CSRF`` header (the pages
get it from the login answer and from ``/api/auth/whoami``): a page on another port of the same host is the same
*site*, so SameSite alone would not stop it. Failed sign-ins are slowed and then refused per client address for a
minute; the token is never logged nor echoed back.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from mloop._util.openapi import error_responses
from mloop.auth.cache import TtlCache
from mloop.auth.roles import Identity
from mloop.auth.sessions import SessionStore
from mloop.auth.tokens import digest_of
from mloop.errors import AuthenticationError, NotFoundError

__all__ = ["COOKIE", "CSRF_HEADER", "BrowserSessions", "LoginThrottle", "cookie_of", "router", "session_payload"]

COOKIE = "mloop_session"
CSRF_HEADER = "x-mloop-csrf"
# A revoked token ends its sessions within this time, and so does a logout on the other workers of a server started
# with --workers (on the worker that answered it, at once); short, since a page's burst of requests is what it saves.
SESSION_CACHE_SECONDS = 2.0

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, Field(min_length=1, max_length=256)]
    user: Annotated[str, Field(min_length=1, max_length=128)] | None = None

    def __repr__(self) -> str:  # the body in a validation traceback must not show the token
        return f"LoginIn(user={self.user!r}, token='***')"


class LoginThrottle:
    """At most ``attempts`` failed sign-ins per client address in ``window`` seconds; each failure also waits
    ``delay`` seconds before it is answered, so guessing is slow even below the limit.

    >>> throttle = LoginThrottle(attempts=2, window=60)
    >>> throttle.failed("1.2.3.4"); throttle.failed("1.2.3.4"); throttle.retry_after("1.2.3.4") > 0
    True
    """

    def __init__(self, attempts: int = 5, window: float = 60.0, delay: float = 0.5, max_clients: int = 10_000):
        self.attempts, self.window, self.delay, self.max_clients = attempts, window, delay, max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        times = self._recent(client)
        return 0.0 if len(times) < self.attempts else max(0.0, times[0] + self.window - time.monotonic())

    def failed(self, client: str) -> None:
        self._recent(client).append(time.monotonic())
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:  # a flood of addresses cannot grow memory without bound
            self._failures.popitem(last=False)

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.setdefault(client, deque(maxlen=self.attempts))
        while times and times[0] + self.window < time.monotonic():
            times.popleft()
        return times


class BrowserSessions:
    """The server's sessions: the store, a short cache of live ones, and the sign-in throttle."""

    def __init__(self, db_url: str) -> None:
        self.store = SessionStore(db_url)
        self.cache = TtlCache(SESSION_CACHE_SECONDS)
        self.throttle = LoginThrottle()

    async def identity(self, secret: str) -> tuple[Identity, str] | None:
        """The identity and CSRF secret of the session whose cookie holds ``secret``."""
        key = digest_of(secret)
        found = self.cache.get(key, False)
        if found is False:
            found = await anyio.to_thread.run_sync(self.store.identity, secret)
            self.cache.put(key, found)
        return found  # type: ignore[no-any-return]

    async def close(self, secret: str) -> None:
        await anyio.to_thread.run_sync(self.store.close, secret)
        self.cache.put(digest_of(secret), None)  # this server refuses the cookie at once, not after the cache time


def _sessions(request: Request) -> BrowserSessions:
    found = getattr(request.app.state, "browser_sessions", None)
    if found is None:
        raise NotFoundError("This server runs without authentication, so there is nothing to sign in to; every "
                            "page opens as it is.", field="auth")
    return found  # type: ignore[no-any-return]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", responses=error_responses(401, 404, 429))
async def login(body: LoginIn, request: Request) -> Response:
    """Sign in with a token (and optionally the user it belongs to): sets the session cookie and answers the
    name, the session's expiry (epoch ms) and its CSRF secret for the ``X-Mloop-CSRF`` header."""
    sessions = _sessions(request)
    client = _client(request)
    wait = sessions.throttle.retry_after(client)
    if wait > 0:
        return JSONResponse({"error_code": "TOO_MANY_ATTEMPTS", "field": "token",
                             "message": f"Too many failed sign-ins from this address; try again in {wait:.0f} s."},
                            status_code=429, headers={"Retry-After": str(int(wait) + 1)})
    opened = await anyio.to_thread.run_sync(sessions.store.open, body.token.strip(), body.user)
    if opened is None:
        sessions.throttle.failed(client)
        await asyncio.sleep(sessions.throttle.delay)
        raise AuthenticationError("That token was not accepted: it is unknown, expired or revoked, its user is "
                                  "disabled, or it is not the named user's. Ask an admin for a token "
                                  "(`mloop auth tokens create USER`).")
    answer = JSONResponse({"name": opened.name, "expires": opened.expires, "csrf": opened.csrf})
    answer.set_cookie(COOKIE, opened.secret, max_age=max(1, (opened.expires - int(time.time() * 1000)) // 1000),
                      path=_cookie_path(request), httponly=True, samesite="strict",
                      secure=request.url.scheme == "https")
    return answer


@router.post("/logout", responses=error_responses(404))
async def logout(request: Request) -> Response:
    """End this browser's session (its cookie stops working at once) and clear the cookie."""
    sessions = _sessions(request)
    secret = request.cookies.get(COOKIE)
    if secret:
        await sessions.close(secret)
    answer = JSONResponse({"signed_out": bool(secret)})
    answer.delete_cookie(COOKIE, path=_cookie_path(request), httponly=True, samesite="strict",
                         secure=request.url.scheme == "https")
    return answer


def _cookie_path(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/") or "/"


def cookie_of(headers: dict[bytes, bytes]) -> str | None:
    """The session secret in a request's ``Cookie`` header, if any (the layer reads raw ASGI headers).

    >>> cookie_of({b"cookie": b"theme=dark; mloop_session=abc123"})
    'abc123'
    """
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value[:128]
    return None


def session_payload(scope: dict[str, Any]) -> dict[str, Any]:
    """What ``whoami`` adds for a request made with the session cookie: its CSRF secret.

    >>> session_payload({"state": {"session_csrf": "c5"}})
    {'via': 'session', 'csrf': 'c5'}
    """
    csrf = scope.get("state", {}).get("session_csrf")
    return {"via": "session", "csrf": csrf} if csrf else {"via": "token"}
