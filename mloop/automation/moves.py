"""Promotion and rollback: the alias moves in the same transaction that marks the action done, with a
compare-and-set on both (the action row must still be ``running``; the alias must still point where it did), so
a crash or a second runtime can never move it twice.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update

from mloop._util.clock import now_ms
from mloop.automation import _tables as t
from mloop.automation.actions import Stop, _promote_target, dumps
from mloop.config import Settings
from mloop.errors import ConflictError
from mloop.events.outbox import append_event
from mloop.registry import _audit, _models
from mloop.registry import _tables as rt
from mloop.store.sql import open_database

__all__ = ["last_promotion", "move_alias"]


def last_promotion(conn: Any, model: str, alias: str) -> dict[str, Any] | None:
    """The latest promotion automation made of ``model``'s ``alias`` (its from and to versions)."""
    rows = conn.execute(select(t.actions.c.result).join(t.firings, t.firings.c.id == t.actions.c.firing)
                        .where(t.firings.c.model == model, t.actions.c.kind == "promote",
                               t.actions.c.status == "done").order_by(t.actions.c.finished.desc())).all()
    for row in rows:
        result = json.loads(row.result)
        if result.get("alias") == alias and result.get("from") is not None:
            return result
    return None


def move_alias(step: Any, rule: Any, firing: dict[str, Any], spec: dict[str, Any], earlier: dict[str, Any],
               settings: Settings) -> dict[str, Any]:
    """Run a ``promote`` or ``rollback`` action ``step``; returns its result (alias, from, to)."""
    from mloop.registry._log import registry_for

    registry = registry_for(settings)
    alias = spec.get("alias", "champion")
    target = _promote_target(spec, _Ctx(settings, rule, earlier)) if step.kind == "promote" else None
    with open_database(settings.db_url).write() as conn:
        _models.lock_model(conn, rule.model)
        current = _models.alias_version(conn, rule.model, alias) if _has_alias(conn, rule.model, alias) else None
        if step.kind == "rollback":
            last = last_promotion(conn, rule.model, alias)
            if last is None or last["to"] != current:
                raise Stop(f"nothing to roll back: {alias} is at v{current}, not at a version automation promoted")
            target = int(last["from"])
        result = {"alias": alias, "from": current, "to": target}
        _models.set_alias(conn, rule.model, alias, target, registry.actor, expected=current)
        event = _audit.record(conn, registry.actor, "alias.set", rule.model, f"models/{rule.model}/aliases/{alias}",
                              before=None if current is None else {"version": current}, after={"version": target})
        extra = [_deploy(conn, registry, rule.model, target, spec["environment"], firing, result)
                 if "environment" in spec and step.kind == "promote" else None]
        _mark_done(conn, step, result)  # same transaction: if another runtime did it first, all of this rolls back
        # lineage: the version says which firing (and so which trigger and rule version) put it there
        _models.write_tags(conn, rt.version_tags, {"name": rule.model, "version": target},
                           {f"automation.{step.kind}": f"{firing['rule']} firing {firing['id']}"})
        name = "automation.promoted" if step.kind == "promote" else "automation.rolled_back"
        append_event(conn, "automation", name, rule.model,
                     {"event": name, "rule": rule.name, "firing": firing["id"], **result})
    registry._emit([event, *filter(None, extra)])
    return result


def _mark_done(conn: Any, step: Any, result: dict[str, Any]) -> None:
    """The compare-and-set on the action row: only the runtime that still sees it running may move the alias."""
    marked = conn.execute(update(t.actions).where(
        t.actions.c.firing == step.firing, t.actions.c.position == step.position, t.actions.c.status == "running")
        .values(status="done", result=dumps(result), finished=now_ms())).rowcount
    if not marked:
        raise ConflictError(f"{step.kind} of firing {step.firing} was already done by another runtime",
                            field="firing")


def _deploy(conn: Any, registry: Any, model: str, version: int, env: str, firing: dict[str, Any],
            result: dict[str, Any]) -> dict[str, Any]:
    """Deploy ``version`` to ``env`` in the promotion's transaction; an environment that requires approval gets
    a pending request instead (a person still decides)."""
    from mloop.registry.environments import _env

    envs = registry.environments
    reason = f"automation: rule {firing['rule']} firing {firing['id']}"
    if _env(conn, env).requires_approval:
        request_id, event = envs._request(conn, env, model, version, reason)
        result["approval_request"] = request_id
    else:
        event = envs._move(conn, env, model, version, reason)
        result["environment"] = env
    return event  # type: ignore[no-any-return]


def _has_alias(conn: Any, model: str, alias: str) -> bool:
    return conn.execute(select(rt.aliases.c.version).where(rt.aliases.c.name == model,
                                                           rt.aliases.c.alias == alias)).first() is not None


class _Ctx:
    def __init__(self, settings: Settings, rule: Any, earlier: dict[str, Any]) -> None:
        self.settings, self.rule, self.earlier = settings, rule, earlier


