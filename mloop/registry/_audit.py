"""The audit log: every registry change, written in the same transaction as the change itself, with its event
in the outbox (``mloop.events``), so that a committed change is never without its webhook deliveries."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select

from mloop._util.clock import now_ms
from mloop.errors import InvalidInputError
from mloop.events.outbox import append_event
from mloop.registry import _tables as t
from mloop.registry.entities import AuditEntry

# The actions, which are also the webhook event names.
ACTIONS = (
    "model.created", "model.updated", "model.deleted",
    "version.created", "version.updated", "version.deleted",
    "alias.set", "alias.deleted",
    "environment.created", "deployment.changed",
    "approval.requested", "approval.approved", "approval.rejected",
    "rule.saved", "rule.applied",
)


def record(conn: Connection, actor: str, action: str, model: str | None, target: str,
           before: Any = None, after: Any = None) -> dict[str, Any]:
    """Append one entry and its outbox event; returns the event a webhook receives."""
    assert action in ACTIONS, action
    now = now_ms()
    result = conn.execute(insert(t.audit_log).values(
        time=now, actor=actor, action=action, model=model, target=target,
        before=None if before is None else json.dumps(before, default=str),
        after=None if after is None else json.dumps(after, default=str)))
    event = {"id": result.inserted_primary_key[0], "event": action, "time": now, "actor": actor, "model": model,
             "target": target, "before": before, "after": after}
    return append_event(conn, "registry", action, model, event)


def query(conn: Connection, model: str | None = None, action: str | None = None, since_id: int = 0,
          limit: int = 100, where: Any = None) -> list[AuditEntry]:
    """Entries newest first, optionally for one model and/or one action, and matching ``where`` (SQL)."""
    if action is not None and action not in ACTIONS:
        raise InvalidInputError(field="action", value=action, expected=f"one of {list(ACTIONS)}")
    if not isinstance(limit, int) or limit < 1:
        raise InvalidInputError(field="limit", value=limit, expected="a positive whole number")
    q = select(t.audit_log).where(t.audit_log.c.id > since_id).order_by(t.audit_log.c.id.desc()).limit(limit)
    if model is not None:
        q = q.where(t.audit_log.c.model == model)
    if action is not None:
        q = q.where(t.audit_log.c.action == action)
    if where is not None:
        q = q.where(where)
    return [AuditEntry(id=r.id, time=r.time, actor=r.actor, action=r.action, model=r.model, target=r.target,
                       before=None if r.before is None else json.loads(r.before),
                       after=None if r.after is None else json.loads(r.after)) for r in conn.execute(q)]
