"""Promotion and rollback: the alias moves in the same transaction that marks the action done, with a
compare-and-set on both (the action row must still be ``running``; the alias must still point where it did), so
a crash or a second runtime can never move it twice.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from mloop._util.clock import now_ms
from mloop.automation import _tables as t
from mloop.automation.actions import Stop, _promote_target, mark_done
from mloop.config import Settings
from mloop.events.outbox import append_event

__all__ = ["last_promotion", "move_alias", "move_in"]


def last_promotion(conn: Any, model: str, alias: str) -> dict[str, Any] | None:
    """The latest promotion automation made of ``model``'s ``alias`` (its from and to versions)."""
    rows = conn.execute(select(t.actions.c.result, t.actions.c.finished)
                        .join(t.firings, t.firings.c.id == t.actions.c.firing)
                        .where(t.firings.c.model == model, t.actions.c.kind.in_(("promote", "canary")),
                               t.actions.c.status == "done").order_by(t.actions.c.finished.desc())).all()
    for row in rows:
        result = json.loads(row.result)
        if result.get("alias") == alias and result.get("from") is not None:
            return {**result, "finished": row.finished}
    return None


def move_alias(step: Any, rule: Any, firing: dict[str, Any], spec: dict[str, Any], earlier: dict[str, Any],
               settings: Settings) -> dict[str, Any]:
    """Run a ``promote`` or ``rollback`` action ``step``; returns its result (alias, from, to)."""
    from mloop.registry import registry_for

    alias = spec.get("alias", "champion")
    target = _promote_target(spec, _Ctx(settings, rule, earlier)) if step.kind == "promote" else None
    with registry_for(settings).transaction() as tx:
        tx.lock(rule.model)
        current = tx.alias(rule.model, alias)
        if step.kind == "rollback":
            target = _rollback_target(tx.connection, rule.model, alias, current, spec)
        result = {"alias": alias, "from": current, "to": target}
        move_in(tx, step, rule, firing, result, spec.get("environment") if step.kind == "promote" else None)
    return result


def move_in(tx: Any, step: Any, rule: Any, firing: dict[str, Any], result: dict[str, Any],
            environment: str | None = None) -> None:
    """Inside ``tx``: move ``result['alias']`` from ``result['from']`` to ``result['to']`` (compare-and-set),
    deploy to ``environment`` if given, mark ``step`` done, tag the version with the firing (its lineage) and
    write the automation event; a second runtime that already did it makes all of this roll back."""
    tx.set_alias(rule.model, result["alias"], result["to"], expected=result["from"])
    if environment:
        result.update(tx.deploy(rule.model, result["to"], environment,
                                f"automation: rule {firing['rule']} firing {firing['id']}"))
    mark_done(tx.connection, step, result)
    kind = "promote" if step.kind in ("promote", "canary") else step.kind
    tx.tag_version(rule.model, result["to"], {f"automation.{kind}": f"{firing['rule']} firing {firing['id']}"})
    name = "automation.promoted" if kind == "promote" else "automation.rolled_back"
    append_event(tx.connection, "automation", name, rule.model,
                 {"event": name, "rule": rule.name, "firing": firing["id"], **result})


def _rollback_target(conn: Any, model: str, alias: str, current: int | None, spec: dict[str, Any]) -> int:
    """The version automation's last promotion replaced, while that promotion is within the rule's window."""
    last = last_promotion(conn, model, alias)
    if last is None or last["to"] != current:
        raise Stop(f"nothing to roll back: {alias} is at v{current}, not at a version automation promoted")
    if "window" in spec:
        from mloop.monitoring.monitor import parse_duration

        age_s = (now_ms() - int(last["finished"])) / 1000
        if age_s > parse_duration(spec["window"], "rollback.window"):
            raise Stop(f"no automatic rollback: v{current} was promoted {age_s:.0f} s ago, past the rule's "
                       f"window of {spec['window']}; move {alias} by hand if it must go back")
    return int(last["from"])


class _Ctx:
    def __init__(self, settings: Settings, rule: Any, earlier: dict[str, Any]) -> None:
        self.settings, self.rule, self.earlier = settings, rule, earlier


