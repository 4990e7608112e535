"""Webhooks on registry and feature events: an HTTP POST signed with HMAC-SHA256, sent from the outbox.

Events are rows first: each change writes its event and one pending delivery per subscribed webhook in its own
transaction (``mloop.events``); a delivery worker (``mloop server``, ``mloop events deliver``, or this process on
a background thread and once more before it exits) sends them, retries with backoff and logs each attempt.

Webhooks reach public addresses only: a URL whose host is (or resolves to) this machine, a private network or a
cloud metadata address is refused when it is added and again at each delivery, which connects to the address it
checked; the setting ``webhook_allow_hosts`` (``MLOOP_WEBHOOK_ALLOW_HOSTS``) lets chosen hosts or networks through.

The receiver checks ``X-Mloop-Signature: sha256=<hex>``, the HMAC of the raw body with the shared secret (see
``signature``), and dedupes on ``X-Mloop-Delivery``. Events are the audit actions, such as ``version.created``,
``alias.set`` and ``deployment.changed``, and the feature store's (``EVENTS``); ``"*"`` subscribes to all.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from mloop._util.clock import now_ms
from mloop._util.egress import check_destination
from mloop.errors import InvalidInputError, NotFoundError
from mloop.events.sealing import SEALED, seal, server_key
from mloop.events.signing import signature
from mloop.events.worker import BACKOFF_S, MAX_ATTEMPTS
from mloop.registry import _tables as t
from mloop.registry._audit import ACTIONS
from mloop.registry.entities import WebhookDelivery

if TYPE_CHECKING:
    from mloop.registry.client import RegistryClient

__all__ = ["Webhooks", "signature"]

DEFAULT_EVENTS = ("version.created", "alias.set", "alias.deleted", "deployment.changed")
MIN_SECRET = 8
URL_PATTERN = r"^https?://"  # the scheme; the host is judged when the webhook is added (check_destination)


FEATURE_EVENTS = ("features.applied", "features.materialized")
ALERT_EVENTS = ("alert.firing", "alert.resolved")  # a monitoring alert rule's state changes (mloop.monitoring)
# continuous training (mloop.automation): a rule fired, its firing ended, an alias moved, a notify action
AUTOMATION_EVENTS = ("automation.fired", "automation.done", "automation.stopped", "automation.failed",
                     "automation.promoted", "automation.rolled_back", "automation.notify")
EVENTS = ACTIONS + FEATURE_EVENTS + ALERT_EVENTS + AUTOMATION_EVENTS


def flush_seconds() -> float:
    """How long a process waits at exit for its own deliveries (``MLOOP_EVENTS_FLUSH_SECONDS``, default 5);
    0 leaves every delivery to a worker."""
    raw = os.environ.get("MLOOP_EVENTS_FLUSH_SECONDS", "5")
    try:
        return min(max(float(raw), 0.0), 300.0)
    except ValueError:
        raise InvalidInputError(field="MLOOP_EVENTS_FLUSH_SECONDS", value=raw,
                                expected="a number of seconds (0 turns the in-process delivery off)") from None


class Webhooks:
    """``client.webhooks``: subscribe URLs to events; this process delivers its own events on a background thread
    (with these attempts, backoff and timeout), and any worker delivers what is left."""

    def __init__(self, client: RegistryClient, max_attempts: int = MAX_ATTEMPTS, backoff: float = BACKOFF_S,
                 timeout: float = 5.0) -> None:
        self.client = client
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout
        self._mine: set[int] = set()  # outbox rows of this process whose deliveries are not settled yet
        self._thread: threading.Thread | None = None
        self._exit_hook = False
        self._lock = threading.RLock()  # the worker thread asks what is pending while holding it

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
        bad = [e for e in chosen if e != "*" and e not in EVENTS]
        if bad:
            raise InvalidInputError(field="events", value=bad[0], expected=f"'*' or one of {list(EVENTS)}")
        check_destination(url, self.client.settings.webhook_allow_hosts)  # last: it resolves the host name
        sealed = seal(secret, server_key(self.client.settings))  # a dump of the database must not reveal it
        with self.client.db.write() as conn:
            result = conn.execute(insert(t.webhooks).values(url=url, secret=sealed, events=json.dumps(chosen),
                                                            model=model, active=True, created=now_ms()))
        return {"id": int(result.inserted_primary_key[0]), "url": url, "events": chosen, "model": model}

    def seal_stored(self) -> int:
        """Seal the secrets stored before sealing existed (once, at a server's start); returns how many."""
        key = server_key(self.client.settings)
        with self.client.db.write() as conn:
            rows = conn.execute(select(t.webhooks.c.id, t.webhooks.c.secret)
                                .where(t.webhooks.c.secret.not_like(f"{SEALED}%"))).all()
            for row in rows:
                conn.execute(update(t.webhooks).where(t.webhooks.c.id == row.id).values(secret=seal(row.secret, key)))
        return len(rows)

    def list(self) -> list[dict[str, Any]]:
        with self.client.db.read() as conn:
            return [{"id": r.id, "url": r.url, "events": json.loads(r.events), "model": r.model,
                     "active": bool(r.active)} for r in conn.execute(select(t.webhooks).order_by(t.webhooks.c.id))]

    def remove(self, webhook_id: int) -> None:
        with self.client.db.write() as conn:
            if not conn.execute(update(t.webhooks).where(t.webhooks.c.id == webhook_id).values(active=False)).rowcount:
                raise NotFoundError(f"No webhook {webhook_id}.", field="webhook_id")

    def dispatch(self, events: list[dict[str, Any]]) -> None:
        """Deliver committed events now on a background thread, as a best effort before the process ends.

        The events are already rows of the outbox: a delivery worker sends whatever this process does not.
        """
        mine = [e["_outbox_id"] for e in events if e.get("_deliveries")]
        if not mine:
            return
        with self._lock:
            self._mine.update(mine)
            if flush_seconds() <= 0:
                return
            if not self._exit_hook:
                atexit.register(self._flush_at_exit)
                self._exit_hook = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="mloop-webhooks", daemon=True)
                self._thread.start()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every delivery of this process's events is settled (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while self._pending_mine():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _flush_at_exit(self) -> None:
        try:
            self.wait(flush_seconds())
        except Exception:  # the database may be gone at interpreter exit; a worker delivers later
            pass

    def _work(self) -> None:
        from mloop.events.worker import DeliveryWorker

        worker = DeliveryWorker(self.client.settings, max_attempts=self.max_attempts, backoff=self.backoff,
                                timeout=self.timeout)
        try:
            while True:
                if worker.run_once():
                    continue
                with self._lock:
                    if not self._pending_mine():
                        self._thread = None
                        return
                wait = worker.next_due_in()
                time.sleep(min(max(wait or 0.0, 0.05), 0.2))
        except Exception:  # best effort: what is left stays in the outbox for a worker
            with self._lock:
                self._thread = None
        finally:
            worker.close()

    def _pending_mine(self) -> int:
        """How many deliveries of this process's events are still pending (settled ones are forgotten)."""
        from mloop.events import _tables as et

        with self._lock:
            asked = sorted(self._mine)
        if not asked:
            return 0
        d = et.deliveries
        with self.client.db.read() as conn:
            pending = {r.event for r in conn.execute(select(d.c.event).where(
                d.c.state == "pending", d.c.event.in_(asked)))}
        with self._lock:  # forget only what was asked about: events dispatched meanwhile stay
            self._mine -= set(asked) - pending
        return len(pending)

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
