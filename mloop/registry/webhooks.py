"""Webhooks on registry events: an HTTP POST signed with HMAC-SHA256, retried with backoff, each attempt logged.

Webhooks reach public addresses only: a URL whose host is (or resolves to) this machine, a private network or a
cloud metadata address is refused when it is added and again at each delivery, which connects to the address it
checked; the setting ``webhook_allow_hosts`` (``MLOOP_WEBHOOK_ALLOW_HOSTS``) lets chosen hosts or networks through.

The receiver checks ``X-Mloop-Signature: sha256=<hex>``, the HMAC of the raw body
with the shared secret (see ``signature``). Events are the audit actions, such as
``version.created``, ``alias.set`` and ``deployment.changed``; ``"*"`` subscribes to all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import re
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from mloop._util.clock import now_ms
from mloop._util.egress import EgressRefused, check_destination
from mloop._util.redact import redact
from mloop.errors import InvalidInputError, NotFoundError
from mloop.registry import _tables as t
from mloop.registry._audit import ACTIONS
from mloop.registry.entities import WebhookDelivery

if TYPE_CHECKING:
    from mloop.registry.client import RegistryClient

__all__ = ["Webhooks", "signature"]

DEFAULT_EVENTS = ("version.created", "alias.set", "alias.deleted", "deployment.changed")
MIN_SECRET = 8
URL_PATTERN = r"^https?://"  # the scheme; the host is judged when the webhook is added (check_destination)


def signature(secret: str, body: bytes) -> str:
    """The value of the ``X-Mloop-Signature`` header for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    """``client.webhooks``: subscribe URLs to events; deliveries run on a background thread."""

    def __init__(self, client: RegistryClient, max_attempts: int = 4, backoff: float = 0.5,
                 timeout: float = 5.0) -> None:
        self.client = client
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout
        self._queue: queue.Queue[tuple[dict[str, Any], dict[str, Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._hooks: tuple[float, list[dict[str, Any]]] | None = None
        self._lock = threading.Lock()

    def add(self, url: str, secret: str, events: list[str] | None = None, model: str | None = None) -> dict[str, Any]:
        """Subscribe ``url`` to ``events`` (default: version created, alias moved, environment changed)."""
        if not isinstance(url, str) or not re.match(URL_PATTERN, url):
            raise InvalidInputError(field="url", value=url, expected="an http:// or https:// URL")
        if not isinstance(secret, str) or len(secret) < MIN_SECRET:
            raise InvalidInputError(field="secret", value="***",
                                    expected=f"a shared secret of at least {MIN_SECRET} characters")
        if events is not None and (isinstance(events, str) or not all(isinstance(e, str) for e in events)):
            raise InvalidInputError(field="events", value=events, expected="a list of event names, e.g. ['alias.set']")
        if model is not None and not isinstance(model, str):
            raise InvalidInputError(field="model", value=model, expected="a model name")
        chosen = list(events or DEFAULT_EVENTS)
        bad = [e for e in chosen if e != "*" and e not in ACTIONS]
        if bad:
            raise InvalidInputError(field="events", value=bad[0], expected=f"'*' or one of {list(ACTIONS)}")
        check_destination(url, self.client.settings.webhook_allow_hosts)  # last: it resolves the host name
        with self.client.db.write() as conn:
            result = conn.execute(insert(t.webhooks).values(url=url, secret=secret, events=json.dumps(chosen),
                                                            model=model, active=True, created=now_ms()))
        self._hooks = None
        return {"id": int(result.inserted_primary_key[0]), "url": url, "events": chosen, "model": model}

    def list(self) -> list[dict[str, Any]]:
        with self.client.db.read() as conn:
            return [{"id": r.id, "url": r.url, "events": json.loads(r.events), "model": r.model,
                     "active": bool(r.active)} for r in conn.execute(select(t.webhooks).order_by(t.webhooks.c.id))]

    def remove(self, webhook_id: int) -> None:
        with self.client.db.write() as conn:
            if not conn.execute(update(t.webhooks).where(t.webhooks.c.id == webhook_id).values(active=False)).rowcount:
                raise NotFoundError(f"No webhook {webhook_id}.", field="webhook_id")
        self._hooks = None

    def _active(self) -> list[dict[str, Any]]:
        cached = self._hooks
        if cached is not None and time.monotonic() - cached[0] < 2.0:
            return cached[1]
        with self.client.db.read() as conn:
            hooks = [{"id": r.id, "url": r.url, "secret": r.secret, "events": set(json.loads(r.events)),
                      "model": r.model} for r in conn.execute(select(t.webhooks).where(t.webhooks.c.active))]
        self._hooks = (time.monotonic(), hooks)
        return hooks

    def dispatch(self, events: list[dict[str, Any]]) -> None:
        """Queue each committed event for every webhook subscribed to it."""
        hooks = self._active()
        if not hooks:
            return
        for event in events:
            for hook in hooks:
                if (event["event"] in hook["events"] or "*" in hook["events"]) and \
                        hook["model"] in (None, event.get("model")):
                    self._queue.put((hook, event))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="mloop-webhooks", daemon=True)
                self._thread.start()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every queued delivery finished (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _work(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout) as http:
            while True:
                try:
                    hook, event = self._queue.get(timeout=5.0)
                except queue.Empty:
                    return
                try:
                    self._deliver(http, hook, event)
                finally:
                    self._queue.task_done()

    def _deliver(self, http: Any, hook: dict[str, Any], event: dict[str, Any]) -> None:
        body = json.dumps(event, default=str, sort_keys=True).encode()
        delivery_id = uuid.uuid4().hex
        headers = {"Content-Type": "application/json", "X-Mloop-Event": event["event"],
                   "X-Mloop-Delivery": delivery_id, "X-Mloop-Signature": signature(hook["secret"], body)}
        for attempt in range(1, self.max_attempts + 1):
            started = time.perf_counter()
            status, error, refused = None, "", False
            try:
                # checked again at each attempt: the name may resolve elsewhere now; connect to what was checked
                url, host_header, extensions = check_destination(
                    hook["url"], self.client.settings.webhook_allow_hosts).pinned()
                status = http.post(url, content=body, headers={**headers, **host_header},
                                   extensions=extensions).status_code
            except EgressRefused as exc:
                error, refused = f"refused: {exc.message}", True
            except Exception as exc:  # network errors are retried, then logged
                error = redact(f"{type(exc).__name__}: {exc}")
            ok = status is not None and 200 <= status < 300
            self._log(hook["id"], delivery_id, event["event"], body, attempt, status, ok,
                      error or ("" if ok else f"HTTP {status}"), (time.perf_counter() - started) * 1000)
            retryable = not refused and (status is None or status >= 500 or status == 429)
            if ok or not retryable or attempt == self.max_attempts:
                return
            time.sleep(self.backoff * 2 ** (attempt - 1))

    def _log(self, webhook_id: int, delivery_id: str, event: str, body: bytes, attempt: int, status: int | None,
             ok: bool, error: str, duration_ms: float) -> None:
        try:
            with self.client.db.write() as conn:
                conn.execute(insert(t.webhook_deliveries).values(
                    webhook_id=webhook_id, delivery_id=delivery_id, event=event, payload=body.decode(),
                    attempt=attempt, status_code=status, ok=ok, error=error, time=now_ms(), duration_ms=duration_ms))
        except Exception:  # the log is best effort; the database may be gone at interpreter exit
            pass

    def deliveries(self, webhook_id: int | None = None, limit: int = 100) -> list[WebhookDelivery]:
        """The delivery log, newest first."""
        d = t.webhook_deliveries
        q = select(d).order_by(d.c.id.desc()).limit(limit)
        if webhook_id is not None:
            q = q.where(d.c.webhook_id == webhook_id)
        with self.client.db.read() as conn:
            return [WebhookDelivery(id=r.id, webhook_id=r.webhook_id, delivery_id=r.delivery_id, event=r.event,
                                    attempt=r.attempt, status_code=r.status_code, ok=bool(r.ok), error=r.error,
                                    time=r.time, duration_ms=r.duration_ms) for r in conn.execute(q)]
