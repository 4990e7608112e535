"""The edge of mloop's HTTP servers: one ASGI middleware that both ``mloop server`` and ``mloop serve`` put first.

It refuses, before the app sees them:

* a ``Host`` that is not this server's (DNS rebinding: a web page whose name resolves to 127.0.0.1), 421;
* a state-changing request sent by a web page of another origin (``Origin`` header), 403;
* a body that is not JSON on a JSON endpoint (an HTML form or a ``text/plain`` fetch needs no CORS preflight), 415;
* a body over the size limit, from ``Content-Length`` up front or counted while it streams, 413;

and it turns an exception that escaped the app into a JSON 500 that keeps the kept-alive connection usable (the
traceback goes to the server log under a short id). Every refusal is the JSON error body
``{error_code, message, field}`` of the rest of the API.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

if TYPE_CHECKING:
    from mloop.config import Settings

__all__ = ["BodyRule", "EdgeMiddleware", "EdgePolicy", "protect"]

log = logging.getLogger("mloop.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class BodyRule:
    """An exception to the JSON-only, size-limited body rule for the paths that ``path`` matches from their start.

    ``path`` is a regular expression matched from the start of the path, so a plain prefix works too
    (``"/invocations"``); ``media_types`` are the media types accepted besides JSON (``None``: any);
    ``limited=False`` leaves the size to the route itself (a streamed upload with its own limit).
    """

    path: str
    methods: frozenset[str] = _UNSAFE_METHODS
    media_types: frozenset[str] | None = frozenset()
    limited: bool = True

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and re.match(self.path, path) is not None


@dataclass(frozen=True, slots=True)
class EdgePolicy:
    """What the edge lets through: body size, hosts, origins, and the per-path body rules."""

    max_body_bytes: int = 64 * 1024 * 1024
    allowed_hosts: frozenset[str] | None = frozenset(LOOPBACK_HOSTS)  # None: any host
    allowed_origins: frozenset[str] = frozenset()  # "*": any
    rules: tuple[BodyRule, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, rules: tuple[BodyRule, ...] = ()) -> EdgePolicy:
        """The policy of ``settings``: its hosts, origins and body limit; the loopback names are always allowed."""
        hosts = {_normal_host(h[1:] if h.startswith("*.") else h) for h in settings.allowed_hosts}
        return cls(max_body_bytes=settings.max_request_bytes,
                   allowed_hosts=None if "*" in hosts else frozenset(hosts | set(LOOPBACK_HOSTS)),
                   allowed_origins=frozenset(o.rstrip("/").lower() for o in settings.allowed_origins), rules=rules)

    def rule_for(self, method: str, path: str) -> BodyRule | None:
        return next((r for r in self.rules if r.matches(method, path)), None)


def protect(app: Any, settings: Settings, rules: tuple[BodyRule, ...] = ()) -> None:
    """Put the edge checks (and CORS, when origins are configured) in front of a Starlette or FastAPI ``app``."""
    policy = EdgePolicy.from_settings(settings, rules)
    if policy.allowed_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=sorted(policy.allowed_origins), allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["x-model-version", "x-prediction-id"])
    app.add_middleware(EdgeMiddleware, policy=policy)  # added last, so it runs first (even before CORS)


class _TooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit (the app may catch it; the edge answers)."""


class EdgeMiddleware:
    """Pure ASGI middleware (never buffers a body) applying an ``EdgePolicy``."""

    def __init__(self, app: ASGIApp, policy: EdgePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        rule = self.policy.rule_for(scope["method"], scope["path"])
        refusal = self._refusal(scope, headers, rule)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        limit = self.policy.max_body_bytes if rule is None or rule.limited else None
        await _run_guarded(self.app, scope, receive, send, limit)

    def _refusal(self, scope: Scope, headers: dict[str, str],
                 rule: BodyRule | None) -> tuple[int, str, str, str] | None:
        host = headers.get("host")
        if host is not None and not self._host_allowed(host):
            return (421, "HOST_NOT_ALLOWED", f"This server does not answer for the host {host!r}; it answers for "
                    f"{sorted(self.policy.allowed_hosts or ())} (add names with --allowed-hosts or "
                    "MLOOP_ALLOWED_HOSTS).", "Host")
        if scope["method"] not in _UNSAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host):
            return (403, "CROSS_ORIGIN", f"A web page from {origin!r} may not change anything here (allow "
                    "origins with MLOOP_ALLOWED_ORIGINS).", "Origin")
        return self._body_refusal(headers, rule)

    def _body_refusal(self, headers: dict[str, str], rule: BodyRule | None) -> tuple[int, str, str, str] | None:
        length_text = headers.get("content-length")
        try:
            length = int(length_text) if length_text is not None else None
        except ValueError:
            return 400, "BAD_REQUEST", f"Content-Length is {length_text!r}; expected a number of bytes.", \
                "Content-Length"
        if length is not None and length > self.policy.max_body_bytes and (rule is None or rule.limited):
            return 413, "REQUEST_TOO_LARGE", _too_large(self.policy.max_body_bytes, length), "body"
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        has_body = bool(length) or "transfer-encoding" in headers
        if _is_json(media) or (not media and not has_body):
            return None
        if rule is not None and (rule.media_types is None or media in rule.media_types):
            return None
        accepted = ["application/json", *sorted(rule.media_types or ())] if rule is not None else ["application/json"]
        return (415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Type is {media or 'missing'!r}; this endpoint accepts "
                f"{' or '.join(accepted)}.", "Content-Type")

    def _host_allowed(self, host: str) -> bool:
        allowed = self.policy.allowed_hosts
        if allowed is None:
            return True
        name = _normal_host(host)
        return name in allowed or any(a.startswith(".") and name.endswith(a) for a in allowed)

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.policy.allowed_origins or "*" in self.policy.allowed_origins:
            return True
        netloc = urlsplit(origin).netloc
        return bool(netloc) and host is not None and netloc == host.lower()  # same origin, e.g. /docs


async def _run_guarded(app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int | None) -> None:
    """Run ``app`` counting body bytes against ``limit``; answer 413 or a JSON 500 when the app could not."""
    received = 0
    exceeded = False
    started = False

    async def counted_receive() -> Message:
        nonlocal received, exceeded
        message = await receive()
        if limit is not None and message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                exceeded = True
                raise _TooLarge(received)
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal started
        if exceeded and not started:
            return  # the app's own answer to the cut-off body: the edge answers 413 instead
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, counted_receive, guarded_send)
    except Exception as exc:
        if started:
            raise
        if not exceeded:
            await _internal_error(send, scope, exc)
            return
    if exceeded and not started:
        await _answer(send, 413, "REQUEST_TOO_LARGE", _too_large(limit or 0, None), "body")


async def _internal_error(send: Send, scope: Scope, exc: Exception) -> None:
    error_id = uuid.uuid4().hex[:12]
    log.error("error %s on %s %s", error_id, scope["method"], scope["path"], exc_info=exc)
    await _answer(send, 500, "INTERNAL", f"The server failed on this request; its log has the details under error "
                  f"id {error_id}.", None, close=False, extra={"id": error_id})


async def _answer(send: Send, status: int, code: str, message: str, field: str | None, *, close: bool = True,
                  extra: dict[str, Any] | None = None) -> None:
    # A refused request may have a body we never read: "connection: close" keeps the next request off this stream.
    body = orjson.dumps({"error_code": code, "message": message, "field": field, **(extra or {})})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _too_large(limit: int, length: int | None) -> str:
    size = f"{length:,} bytes" if length is not None else f"over {limit:,} bytes"
    return (f"The request body is {size}; this server accepts at most {limit:,} bytes (setting max_request_bytes, "
            "MLOOP_MAX_REQUEST_BYTES).")


# ASGI servers hand header names lowercased; only these matter here (decoding the rest costs on every request)
_READ_HEADERS = frozenset({b"host", b"origin", b"content-type", b"content-length", b"transfer-encoding"})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ()) if k in _READ_HEADERS}


def _is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


@functools.lru_cache(maxsize=256)
def _normal_host(host: str) -> str:
    """``Host`` header or setting value without port, brackets, case or trailing dot: ``[::1]:80`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        host = name
    return host.rstrip(".") if host != "." else host
