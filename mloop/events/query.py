"""Looking at deliveries and reviving dead ones (``mloop events list`` / ``retry``).

>>> import tempfile
>>> from mloop.store.sql import open_database
>>> list_deliveries(open_database(f"sqlite:///{tempfile.mkdtemp()}/doc.db"), state="failed")
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, exists, select, update

from mloop._util.clock import now_ms
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.events import _tables as t
from mloop.store.sql import Database

__all__ = ["Delivery", "list_deliveries", "purge", "retry"]

STATES = {"pending": ("pending",), "failed": ("dead",), "delivered": ("delivered",), "all": None}


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook, and where its delivery stands."""

    id: int
    event_id: str
    event: str
    subject: str | None
    webhook_id: int
    delivery_id: str
    state: str
    attempts: int
    next_attempt: int
    last_error: str
    created: int


def list_deliveries(db: Database, state: str = "all", limit: int = 100) -> list[Delivery]:
    """Deliveries newest first; ``state`` is pending, failed (dead-lettered), delivered or all."""
    if state not in STATES:
        raise InvalidInputError(field="state", value=state, expected=f"one of {list(STATES)}")
    if not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidInputError(field="limit", value=limit, expected="a whole number from 1 to 10000")
    d, e = t.deliveries, t.events
    query = (select(d, e.c.event_id, e.c.name, e.c.subject, e.c.created).join(e, e.c.id == d.c.event)
             .order_by(d.c.id.desc()).limit(limit))
    wanted = STATES[state]
    if wanted is not None:
        query = query.where(d.c.state.in_(wanted))
    with db.read() as conn:
        return [Delivery(r.id, r.event_id, r.name, r.subject, r.webhook_id, r.delivery_id, r.state, r.attempts,
                         r.next_attempt, r.last_error, r.created) for r in conn.execute(query)]


def retry(db: Database, delivery: int) -> None:
    """Make a dead-lettered (or waiting) delivery due now, with a fresh count of attempts."""
    if isinstance(delivery, bool) or not isinstance(delivery, int) or delivery < 1:
        raise InvalidInputError(field="id", value=delivery, expected="a delivery id from `mloop events list`")
    d = t.deliveries
    with db.write() as conn:
        row = conn.execute(select(d.c.state).where(d.c.id == delivery)).first()
        if row is None:
            raise NotFoundError(f"No delivery {delivery}; `mloop events list` shows them.", field="id")
        if row.state == "delivered":
            raise ConflictError(f"Delivery {delivery} was delivered already; the receiver answered 2xx.", field="id")
        conn.execute(update(d).where(d.c.id == delivery).values(state="pending", attempts=0, next_attempt=now_ms(),
                                                                updated=now_ms()))


def purge(db: Database, older_than: timedelta) -> int:
    """Delete events older than ``older_than`` whose deliveries are all settled (delivered or dead-lettered),
    with their deliveries; returns how many events went. The audit log keeps the history of the changes."""
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise InvalidInputError(field="older_than", value=older_than, expected="a duration of 0 or more")
    d, e = t.deliveries, t.events
    cutoff = now_ms() - int(older_than.total_seconds() * 1000)
    unsettled = exists().where(d.c.event == e.c.id, d.c.state == "pending")
    with db.write() as conn:
        ids = [r.id for r in conn.execute(select(e.c.id).where(e.c.created <= cutoff, ~unsettled))]
        for start in range(0, len(ids), 500):  # bounded statements, whatever the backlog
            chunk = ids[start:start + 500]
            conn.execute(delete(d).where(d.c.event.in_(chunk)))
            conn.execute(delete(e).where(e.c.id.in_(chunk)))
    return len(ids)
