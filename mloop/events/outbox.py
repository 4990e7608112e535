"""Writing events: a row in the outbox and one pending delivery per subscribed webhook, in the caller's
transaction, so an event exists exactly when the change it reports was committed.

>>> import tempfile
>>> from mloop.store.sql import open_database
>>> db = open_database(f"sqlite:///{tempfile.mkdtemp()}/doc.db")
>>> with db.write() as conn:
...     event = append_event(conn, "registry", "model.created", "doc-model", {"event": "model.created"})
>>> len(event["event_id"])
32
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Connection, insert, select

from mloop._util.clock import now_ms
from mloop.events import _tables as t

__all__ = ["append_event"]


def append_event(conn: Connection, source: str, name: str, subject: str | None,
                 payload: dict[str, Any]) -> dict[str, Any]:
    """Store one event inside ``conn``'s transaction; returns ``payload`` with its ``event_id`` and outbox row id.

    The body every delivery sends is fixed here (sorted keys), so each attempt, from any worker, signs the same bytes.
    """
    event_id = uuid.uuid4().hex
    body = {**payload, "event_id": event_id}
    now = now_ms()
    row_id = conn.execute(insert(t.events).values(
        event_id=event_id, source=source, name=name, subject=subject,
        payload=json.dumps(body, default=str, sort_keys=True), created=now)).inserted_primary_key[0]
    hooks = _subscribed(conn, name, subject)
    if hooks:
        conn.execute(insert(t.deliveries), [
            {"event": row_id, "webhook_id": hook, "delivery_id": uuid.uuid4().hex, "state": "pending", "attempts": 0,
             "next_attempt": now, "lease_until": None, "lease_owner": None, "last_error": "", "updated": now}
            for hook in hooks])
    return {**body, "_outbox_id": int(row_id), "_deliveries": len(hooks)}


def _subscribed(conn: Connection, name: str, subject: str | None) -> list[int]:
    """Active webhooks that subscribed to ``name`` (or ``*``) for every subject or for this one."""
    from mloop.registry._tables import webhooks

    found = []
    for row in conn.execute(select(webhooks.c.id, webhooks.c.events, webhooks.c.model).where(webhooks.c.active)):
        names = json.loads(row.events)
        if (name in names or "*" in names) and row.model in (None, subject):
            found.append(int(row.id))
    return found
