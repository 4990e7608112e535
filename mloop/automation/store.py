"""Rules in the metadata database (each apply that changes one is a new version), and the history reads:
firings with their actions, and a model's timeline.

>>> import tempfile
>>> from mloop.config import Settings
>>> settings = Settings.load(home=tempfile.mkdtemp())
>>> apply_rules([{"name": "r", "given": {"model": "m"}, "trigger": {"kind": "manual"},
...               "actions": ["notify"]}], settings=settings)
[{'name': 'r', 'version': 1, 'changed': True}]
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from mloop._util.clock import now_ms
from mloop.automation import _tables as t
from mloop.automation.rules import Rule, load_rules, rule_from_json
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.store.sql import open_database

__all__ = ["apply_rules", "firings", "get_rule", "list_rules", "set_paused", "timeline"]


def apply_rules(source: str | Path | list[Any] | dict[str, Any], *,
                settings: Settings | None = None) -> list[dict[str, Any]]:
    """Store the rules of ``source`` (a YAML file or text, or parsed data); all or none. Each rule whose spec
    changed gets a new version; the pause state stays what ``mloop automation pause/resume`` set unless the
    file says ``paused``."""
    rules = load_rules(source)
    settings = settings or Settings.load()
    applied = []
    with open_database(settings.db_url).write() as conn:
        for rule in rules:
            row = conn.execute(select(t.rules).where(t.rules.c.name == rule.name)).first()
            spec, now = rule.to_json(), now_ms()
            if row is not None and row.spec == spec:
                applied.append({"name": rule.name, "version": row.version, "changed": False})
                continue
            version = 1 if row is None else row.version + 1
            conn.execute(insert(t.rule_versions).values(name=rule.name, version=version, spec=spec, created=now))
            values = {"version": version, "spec": spec, "paused": int(rule.paused), "updated": now}
            if row is None:
                conn.execute(insert(t.rules).values(name=rule.name, **values))
            else:
                conn.execute(update(t.rules).where(t.rules.c.name == rule.name).values(**values))
            applied.append({"name": rule.name, "version": version, "changed": True})
    return applied


def _row_to_dict(row: Any) -> dict[str, Any]:
    rule = rule_from_json(row.spec)
    return {"name": row.name, "version": row.version, "paused": bool(row.paused), "model": rule.model,
            "trigger": rule.trigger["kind"], "when": rule.when, "actions": [a.kind for a in rule.actions],
            "updated": row.updated}


def list_rules(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every rule with its version, pause state, model, trigger kind, condition and actions."""
    settings = settings or Settings.load()
    with open_database(settings.db_url).read() as conn:
        return [_row_to_dict(r) for r in conn.execute(select(t.rules).order_by(t.rules.c.name))]


def get_rule(name: str, settings: Settings | None = None) -> tuple[Rule, int, bool]:
    """The rule ``name``: (rule, version, paused)."""
    settings = settings or Settings.load()
    with open_database(settings.db_url).read() as conn:
        row = conn.execute(select(t.rules).where(t.rules.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"No automation rule named {name!r}; apply one with mloop automation apply.",
                            field="rule")
    return rule_from_json(row.spec), row.version, bool(row.paused)


def set_paused(name: str, paused: bool, settings: Settings | None = None) -> None:
    """Pause (no trigger observed, nothing fires) or resume the rule ``name``."""
    settings = settings or Settings.load()
    get_rule(name, settings)
    with open_database(settings.db_url).write() as conn:
        conn.execute(update(t.rules).where(t.rules.c.name == name).values(paused=int(paused), updated=now_ms()))


def firings(*, rule: str | None = None, model: str | None = None, limit: int = 50,
            settings: Settings | None = None, where: Any = None, firing: str | None = None) -> list[dict[str, Any]]:
    """Firings, newest first, each with its event and its actions (status and result); ``firing`` keeps the one
    with that id (a version's ``automation.firing`` tag leads here); ``where`` is a further SQL condition on the
    firings table (a server keeps the firings its caller may see)."""
    settings = settings or Settings.load()
    if firing is not None and (not isinstance(firing, str) or not re.fullmatch(r"[0-9a-f]{32}", firing)):
        raise InvalidInputError(field="firing", value=firing, expected="a firing id (32 hex characters)")
    query = select(t.firings, t.events.c.kind, t.events.c.payload).join(
        t.events, t.events.c.id == t.firings.c.event)
    if rule:
        query = query.where(t.firings.c.rule == rule)
    if model:
        query = query.where(t.firings.c.model == model)
    if firing:
        query = query.where(t.firings.c.id == firing)
    if where is not None:
        query = query.where(where)
    query = query.order_by(t.firings.c.created.desc()).limit(max(1, min(int(limit), 1000)))
    with open_database(settings.db_url).read() as conn:
        rows = conn.execute(query).all()
        acts = conn.execute(select(t.actions).where(t.actions.c.firing.in_([r.id for r in rows]))
                            .order_by(t.actions.c.position)).all() if rows else []
    by_firing: dict[str, list[dict[str, Any]]] = {}
    for a in acts:
        by_firing.setdefault(a.firing, []).append({
            "position": a.position, "kind": a.kind, "status": a.status, "result": json.loads(a.result or "{}"),
            "started": a.started, "finished": a.finished})
    return [{"id": r.id, "rule": r.rule, "rule_version": r.rule_version, "model": r.model, "state": r.state,
             "reason": r.reason, "trigger": r.kind, "event": json.loads(r.payload), "created": r.created,
             "actions": by_firing.get(r.id, [])} for r in rows]


def timeline(model: str, *, limit: int = 200, settings: Settings | None = None) -> list[dict[str, Any]]:
    """What automation did for ``model``, oldest first: one line per firing and per finished action."""
    lines = []
    for firing in reversed(firings(model=model, limit=limit, settings=settings)):
        lines.append({"time": firing["created"], "what": f"{firing['rule']} fired on {firing['trigger']}",
                      "detail": firing["reason"], "firing": firing["id"]})
        for action in firing["actions"]:
            if action["finished"] is not None:
                lines.append({"time": action["finished"], "what": f"{action['kind']} {action['status']}",
                              "detail": action["result"], "firing": firing["id"]})
    return lines
