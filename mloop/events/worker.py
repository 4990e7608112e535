"""Delivering the outbox: claim due deliveries with a lease, POST them signed, record each attempt.

Any number of workers may run at once (the server's, ``mloop events deliver``, a CLI process flushing before it
exits): a delivery is claimed by one conditional UPDATE (after ``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL), and only the oldest pending delivery of each webhook is claimable, so a webhook receives its events
in order, one at a time. A worker that dies mid-delivery leaves a lease that expires; another worker then sends
the same delivery again with the same ``X-Mloop-Delivery`` id: at-least-once on the wire, exactly once for a
receiver whose 2xx answer was recorded, and a receiver that dedupes on the id never acts twice.

>>> import tempfile
>>> from mloop.config import Settings
>>> settings = Settings.load(home=tempfile.mkdtemp())
>>> DeliveryWorker(settings).run_once()
0
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, insert, or_, select, update

from mloop._util.clock import now_ms
from mloop._util.egress import EgressRefused, check_destination
from mloop._util.redact import redact
from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError
from mloop.events import _tables as t
from mloop.store.sql import open_database

__all__ = ["DeliveryWorker", "lease_seconds"]

MAX_DELAY_S = 3600.0  # the backoff stops growing at an hour
MAX_ATTEMPTS = 6  # then dead-lettered (`mloop events list --failed`, `mloop events retry ID`)
BACKOFF_S = 1.0  # before the first retry; 1, 2, 4, 8, 16 s (jittered): about half a minute in all


def lease_seconds() -> float:
    """How long a claimed delivery stays a worker's (``MLOOP_EVENTS_LEASE_SECONDS``, default 60): longer than any
    attempt, shorter than you want a crashed worker's deliveries to wait."""
    raw = os.environ.get("MLOOP_EVENTS_LEASE_SECONDS", "60")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.5 <= value <= 86400:
        raise InvalidInputError(field="MLOOP_EVENTS_LEASE_SECONDS", value=raw,
                                expected="a number of seconds between 0.5 and 86400")
    return value


@dataclass(frozen=True)
class Claimed:
    """One delivery a worker holds the lease of."""

    id: int
    delivery_id: str
    attempts: int
    webhook_id: int
    url: str
    secret: str
    active: bool
    event_id: str
    name: str
    payload: str


class DeliveryWorker:
    """Sends pending deliveries of the metadata database of ``settings``; safe to run beside other workers."""

    def __init__(self, settings: Settings, max_attempts: int = MAX_ATTEMPTS, backoff: float = BACKOFF_S,
                 timeout: float = 5.0, lease: float | None = None, batch: int = 8) -> None:
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidInputError(field="max_attempts", value=max_attempts, expected="a whole number >= 1")
        self.settings = settings
        self.db = open_database(settings.db_url)
        lease = lease if lease is not None else lease_seconds()
        self.lease_ms = int(lease * 1000)
        # an attempt ends well within the lease, so no other worker takes a delivery that is still in flight
        self.max_attempts, self.backoff, self.timeout = max_attempts, backoff, min(timeout, lease / 2)
        self.batch = batch
        self.attempted = 0  # attempts this worker made, for its report
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._http: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loops
    def run_once(self) -> int:
        """One pass: claim what is due now and attempt each once; returns how many attempts were made."""
        with self._lock:
            claimed = self.claim(self.batch)
            expires = time.monotonic() + self.lease_ms / 1000
            for done, item in enumerate(claimed):
                if time.monotonic() + self.timeout > expires:  # the lease could lapse mid-attempt: hand back
                    self._release(claimed[done:])
                    return done
                self._attempt(item)
            return len(claimed)

    def run_until_empty(self, timeout: float = 600.0, stop: threading.Event | None = None) -> bool:
        """Deliver until no delivery is pending (True), or ``timeout`` seconds passed (False); waits out backoffs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            if self.run_once():
                continue
            wait = self.next_due_in()
            if wait is None:
                return True
            # due but not claimable (behind an earlier delivery of its webhook, held by another worker): poll gently
            time.sleep(min(max(wait, 0.05), 0.5, max(deadline - time.monotonic(), 0)))
        return self.next_due_in() is None

    def serve(self, stop: threading.Event, poll: float = 1.0) -> None:
        """Deliver until ``stop`` is set, polling the outbox every ``poll`` seconds when idle."""
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # the database may be briefly unreachable: try again at the next poll
                busy = 0
            if not busy:
                stop.wait(poll)
        self.close()

    def start(self, poll: float = 1.0) -> Callable[[], None]:
        """Run ``serve`` on a daemon thread; returns the function that stops it (waiting for the current attempt)."""
        stop = threading.Event()
        thread = threading.Thread(target=self.serve, args=(stop, poll), name="mloop-events", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(self.timeout + 5)

        return halt

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # ------------------------------------------------------------------ claiming
    def claim(self, limit: int) -> list[Claimed]:
        """Take the lease of up to ``limit`` due deliveries, each the oldest pending one of its webhook."""
        d, earlier = t.deliveries, t.deliveries.alias("earlier")
        now = now_ms()
        free = or_(d.c.lease_until.is_(None), d.c.lease_until < now)
        head = ~exists().where(earlier.c.webhook_id == d.c.webhook_id, earlier.c.state == "pending",
                               earlier.c.id < d.c.id)
        due = (select(d.c.id).where(d.c.state == "pending", d.c.next_attempt <= now, free, head)
               .order_by(d.c.id).limit(limit))
        with self.db.read() as conn:  # a cheap look first: an idle worker never takes SQLite's write lock
            if conn.execute(due.limit(1)).first() is None:
                return []
        if not self.db.is_sqlite:  # SQLite writers are serialized by BEGIN IMMEDIATE already
            due = due.with_for_update(skip_locked=True, of=d)
        with self.db.write() as conn:
            ids = [row.id for row in conn.execute(due)]
            won = [i for i in ids if conn.execute(
                update(d).where(d.c.id == i, d.c.state == "pending", free)
                .values(lease_until=now + self.lease_ms, lease_owner=self.owner)).rowcount == 1]
            return self._load(conn, won) if won else []

    def _release(self, items: list[Claimed]) -> None:
        d = t.deliveries
        with self.db.write() as conn:
            conn.execute(update(d).where(d.c.id.in_([i.id for i in items]), d.c.lease_owner == self.owner)
                         .values(lease_until=None, lease_owner=None))

    def _load(self, conn: Any, ids: list[int]) -> list[Claimed]:
        from mloop.registry._tables import webhooks

        d, e = t.deliveries, t.events
        rows = conn.execute(select(d.c.id, d.c.delivery_id, d.c.attempts, d.c.webhook_id, webhooks.c.url,
                                   webhooks.c.secret, webhooks.c.active, e.c.event_id, e.c.name, e.c.payload)
                            .join(e, e.c.id == d.c.event).join(webhooks, webhooks.c.id == d.c.webhook_id)
                            .where(d.c.id.in_(ids)).order_by(d.c.id))
        return [Claimed(r.id, r.delivery_id, r.attempts, r.webhook_id, r.url, r.secret, bool(r.active), r.event_id,
                        r.name, r.payload) for r in rows]

    def next_due_in(self) -> float | None:
        """Seconds until the next pending delivery is due (0 when one is due now); None when none is pending."""
        d = t.deliveries
        due_at = func.max(d.c.next_attempt, func.coalesce(d.c.lease_until, 0)) if self.db.is_sqlite else \
            func.greatest(d.c.next_attempt, func.coalesce(d.c.lease_until, 0))
        with self.db.read() as conn:
            soonest = conn.execute(select(func.min(due_at)).where(d.c.state == "pending")).scalar()
        return None if soonest is None else max(0.0, (soonest - now_ms()) / 1000)

    # ------------------------------------------------------------------ one attempt
    def _attempt(self, item: Claimed) -> None:
        self.attempted += 1
        if not item.active:
            self._settle(item, None, "the webhook was removed", final=True, log=False, duration_ms=0.0)
            return
        started = time.perf_counter()
        status, error, refused = self._post(item)
        ok = status is not None and 200 <= status < 300
        retryable = not refused and (status is None or status >= 500 or status == 429)
        self._settle(item, status, "" if ok else error or f"HTTP {status}", final=ok or not retryable,
                     duration_ms=(time.perf_counter() - started) * 1000, ok=ok)

    def _post(self, item: Claimed) -> tuple[int | None, str, bool]:
        from mloop.events.sealing import server_key, unseal
        from mloop.events.signing import signed_headers

        body = item.payload.encode()
        try:
            secret = unseal(item.secret, server_key(self.settings))
        except MloopError as exc:  # another key than the one it was sealed with: asking again will not help
            return None, exc.message, True
        headers = {"Content-Type": "application/json", "X-Mloop-Event": item.name, "X-Mloop-Event-Id": item.event_id,
                   "X-Mloop-Delivery": item.delivery_id, "X-Mloop-Attempt": str(item.attempts + 1),
                   **signed_headers(secret, body)}
        try:
            # checked at each attempt: the name may resolve elsewhere now; connect to the address that was checked
            url, host_header, extensions = check_destination(item.url, self.settings.webhook_allow_hosts).pinned()
            response = self._client().post(url, content=body, headers={**headers, **host_header},
                                           extensions=extensions)
            return response.status_code, "", False
        except EgressRefused as exc:
            return None, f"refused: {exc.message}", True
        except Exception as exc:  # network errors are retried, then dead-lettered
            return None, redact(f"{type(exc).__name__}: {exc}"), False

    def _client(self) -> Any:
        if self._http is None:
            import httpx

            self._http = httpx.Client(timeout=self.timeout)
        return self._http

    def _settle(self, item: Claimed, status: int | None, error: str, final: bool, duration_ms: float,
                ok: bool = False, log: bool = True) -> None:
        from mloop.registry._tables import webhook_deliveries

        attempts = item.attempts + (1 if log else 0)
        state = "delivered" if ok else "dead" if final or attempts >= self.max_attempts else "pending"
        now = now_ms()
        d = t.deliveries
        with self.db.write() as conn:
            if log:
                conn.execute(insert(webhook_deliveries).values(
                    webhook_id=item.webhook_id, delivery_id=item.delivery_id, event=item.name, payload=item.payload,
                    attempt=attempts, status_code=status, ok=ok, error=error, time=now, duration_ms=duration_ms))
            # only while the lease is still ours: had it expired, another worker owns the delivery now
            conn.execute(update(d).where(d.c.id == item.id, d.c.lease_owner == self.owner).values(
                state=state, attempts=attempts, next_attempt=now + int(self.delay(attempts) * 1000),
                lease_until=None, lease_owner=None, last_error=error, updated=now))

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failures: exponential, with jitter in [50%, 100%]."""
        return min(self.backoff * 2 ** (attempts - 1), MAX_DELAY_S) * (0.5 + random.random() / 2)



