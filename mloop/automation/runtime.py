"""The runtime: one ``tick`` observes every active rule's trigger, records new events (deduplicated), creates a
firing for each whose ``when`` holds, then runs the pending firings' actions in order.

Restart-safe by construction: a firing is claimed with a lease (a conditional UPDATE), an action moves
pending -> running -> done by conditional UPDATEs, and a promotion or rollback moves the alias in the same
transaction that marks its action done, so a crash at any point either did the move and recorded it, or did
neither. A killed runtime's firing is picked up again once its lease expires, at its first unfinished action.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mloop._util.clock import now_ms
from mloop.automation import _tables as t
from mloop.automation.actions import Context, Stop, dumps, run_action
from mloop.automation.moves import move_alias
from mloop.automation.rules import Rule, rule_from_json
from mloop.automation.triggers import Candidate, observe
from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError
from mloop.events.outbox import append_event
from mloop.store.sql import open_database

__all__ = ["TickReport", "dry_run", "fire_manual", "lease_seconds", "run_firings", "tick"]


def lease_seconds() -> float:
    """How long a runtime owns a firing before another may take it over (``MLOOP_AUTOMATION_LEASE_SECONDS``)."""
    raw = os.environ.get("MLOOP_AUTOMATION_LEASE_SECONDS", "600")
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise InvalidInputError(field="MLOOP_AUTOMATION_LEASE_SECONDS", value=raw, expected="seconds") from None


@dataclass
class TickReport:
    events: list[dict[str, Any]] = field(default_factory=list)  # new trigger events
    fired: list[str] = field(default_factory=list)  # new firing ids
    ran: list[dict[str, Any]] = field(default_factory=list)  # firings run: id, state, reason
    errors: list[str] = field(default_factory=list)  # triggers that could not be observed


def _active_rules(settings: Settings) -> list[tuple[Rule, int]]:
    with open_database(settings.db_url).read() as conn:
        rows = conn.execute(select(t.rules).where(t.rules.c.paused == 0).order_by(t.rules.c.name)).all()
    return [(rule_from_json(r.spec), r.version) for r in rows]


def _last_payload(conn: Any, rule: str) -> dict[str, Any] | None:
    row = conn.execute(select(t.events.c.payload).where(t.events.c.rule == rule)
                       .order_by(t.events.c.created.desc()).limit(1)).first()
    return None if row is None else json.loads(row.payload)


def _given_holds(rule: Rule, settings: Settings) -> tuple[bool, str]:
    if not rule.tags and not rule.environment:
        return True, ""
    from mloop.registry import registry_for

    registry = registry_for(settings)
    if rule.environment and registry.environments.current(rule.model, rule.environment) is None:
        return False, f"{rule.model} is not deployed in {rule.environment}"
    tags = registry.get_model(rule.model).tags
    wrong = {k: v for k, v in rule.tags.items() if tags.get(k) != v}
    return (not wrong), (f"model tags {wrong} do not match" if wrong else "")


def _observe_all(now: datetime, settings: Settings, report: TickReport) -> list[tuple[Rule, int, Candidate]]:
    seen = []
    db = open_database(settings.db_url)
    for rule, version in _active_rules(settings):
        try:
            with db.read() as conn:
                last = _last_payload(conn, rule.name)
            seen += [(rule, version, c) for c in observe(rule, now, last, settings)]
        except MloopError as exc:  # one rule's missing monitor or file must not stop the others
            report.errors.append(f"{rule.name}: {exc.message}")
    return seen


def tick(*, now: datetime | None = None, run: bool = True, settings: Settings | None = None) -> TickReport:
    """One pass: observe triggers, record events, create firings, then (``run``) run the pending firings."""
    settings = settings or Settings.load()
    report = TickReport()
    for rule, version, candidate in _observe_all(now or datetime.now(UTC), settings, report):
        recorded = record_event(rule, version, rule.trigger["kind"], candidate, settings)
        if recorded is not None:
            report.events.append(recorded["event"])
            if recorded["firing"]:
                report.fired.append(recorded["firing"])
    if run:
        report.ran = run_firings(settings=settings)
    return report


def record_event(rule: Rule, version: int, kind: str, candidate: Candidate,
                 settings: Settings) -> dict[str, Any] | None:
    """Insert the event (None if its key exists: already recorded) and, if the rule's condition holds on it,
    its firing with pending actions, all in one transaction."""
    holds, reason = rule.condition.evaluate(candidate.payload), rule.condition.explain(candidate.payload)
    given, why_not = _given_holds(rule, settings)
    event_id, firing_id, now = uuid.uuid4().hex, None, now_ms()
    try:
        with open_database(settings.db_url).write() as conn:
            conn.execute(insert(t.events).values(id=event_id, dedupe_key=candidate.key[:512], kind=kind,
                                                 rule=rule.name, payload=dumps(candidate.payload), created=now))
            if holds and given:
                firing_id = _insert_firing(conn, rule, version, event_id, reason, now)
    except IntegrityError:
        return None
    return {"event": {"id": event_id, "rule": rule.name, "kind": kind, "key": candidate.key,
                      "payload": candidate.payload, "holds": holds and given, "reason": why_not or reason},
            "firing": firing_id}


def _insert_firing(conn: Any, rule: Rule, version: int, event_id: str, reason: str, now: int) -> str:
    firing_id = uuid.uuid4().hex
    conn.execute(insert(t.firings).values(id=firing_id, event=event_id, rule=rule.name, rule_version=version,
                                          model=rule.model, state="pending", reason=reason, created=now,
                                          updated=now))
    conn.execute(insert(t.actions), [{"firing": firing_id, "position": i, "kind": a.kind, "spec": dumps(a.spec),
                                      "status": "pending", "result": "{}"} for i, a in enumerate(rule.actions)])
    append_event(conn, "automation", "automation.fired", rule.model,
                 {"event": "automation.fired", "rule": rule.name, "rule_version": version, "firing": firing_id,
                  "reason": reason})
    return firing_id


def fire_manual(rule_name: str, payload: dict[str, Any] | None = None, *, request_id: str | None = None,
                run: bool = True, settings: Settings | None = None) -> dict[str, Any]:
    """Fire ``rule_name`` by hand (CLI, REST); ``request_id`` makes a retried request fire once."""
    from mloop.automation.store import get_rule

    settings = settings or Settings.load()
    rule, version, paused = get_rule(rule_name, settings)
    if paused:
        raise InvalidInputError(f"Rule {rule_name!r} is paused; resume it first.", field="rule", value=rule_name)
    if payload is not None and not isinstance(payload, dict):
        raise InvalidInputError(field="payload", value=payload, expected="a mapping of field: value")
    if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= 128):
        raise InvalidInputError(field="request_id", value=str(request_id)[:60], expected="1 to 128 characters")
    key = f"manual:{rule_name}:{request_id or uuid.uuid4().hex}"
    recorded = record_event(rule, version, "manual", Candidate(key, {"manual": True, **(payload or {})}), settings)
    if recorded is None:
        return {"recorded": False, "key": key}
    ran = run_firings(settings=settings) if run else []
    return {"recorded": True, "key": key, "firing": recorded["firing"], "reason": recorded["event"]["reason"],
            "ran": ran}


def dry_run(*, now: datetime | None = None, settings: Settings | None = None) -> list[dict[str, Any]]:
    """What a tick would see and fire now, and why; writes nothing."""
    settings = settings or Settings.load()
    report = TickReport()
    shown = []
    db = open_database(settings.db_url)
    for rule, version, candidate in _observe_all(now or datetime.now(UTC), settings, report):
        with db.read() as conn:
            known = conn.execute(select(t.events.c.id).where(t.events.c.dedupe_key == candidate.key[:512])).first()
        holds = rule.condition.evaluate(candidate.payload) and _given_holds(rule, settings)[0]
        shown.append({"rule": rule.name, "version": version, "trigger": rule.trigger["kind"], "key": candidate.key,
                      "already_recorded": known is not None, "would_fire": holds and known is None,
                      "reason": rule.condition.explain(candidate.payload),
                      "actions": [a.kind for a in rule.actions]})
    return shown + [{"rule": e.split(":", 1)[0], "error": e} for e in report.errors]


def _claim(settings: Settings, owner: str) -> list[str]:
    now = now_ms()
    free = or_(t.firings.c.lease_until.is_(None), t.firings.c.lease_until < now)
    with open_database(settings.db_url).read() as conn:
        ids = [r.id for r in conn.execute(select(t.firings.c.id).where(
            t.firings.c.state.in_(("pending", "running")), free).order_by(t.firings.c.created))]
    claimed = []
    for firing_id in ids:
        with open_database(settings.db_url).write() as conn:
            took = conn.execute(update(t.firings).where(t.firings.c.id == firing_id, free,
                                                        t.firings.c.state.in_(("pending", "running")))
                                .values(state="running", lease_owner=owner,
                                        lease_until=now + int(lease_seconds() * 1000), updated=now)).rowcount
        if took:
            claimed.append(firing_id)
    return claimed


def run_firings(*, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Run every pending firing (and every one whose runtime died), each from its first unfinished action."""
    settings = settings or Settings.load()
    owner = uuid.uuid4().hex
    ran = []
    for firing_id in _claim(settings, owner):
        with _heartbeat(settings, firing_id, owner):
            ran.append(_run_firing(firing_id, owner, settings))
    return ran


@contextmanager
def _heartbeat(settings: Settings, firing_id: str, owner: str) -> Iterator[None]:
    """Renew the lease while the firing runs: a retraining longer than the lease is still this runtime's, and
    only a dead runtime's firing is taken over (it would otherwise resume the same flow run twice at once)."""
    stop = threading.Event()
    period = max(lease_seconds() / 3, 0.05)

    def renew() -> None:
        while not stop.wait(period):
            with open_database(settings.db_url).write() as conn:
                conn.execute(update(t.firings).where(t.firings.c.id == firing_id, t.firings.c.lease_owner == owner)
                             .values(lease_until=now_ms() + int(lease_seconds() * 1000)))

    beat = threading.Thread(target=renew, name="mloop-automation-lease", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()


def _finish(settings: Settings, firing: dict[str, Any], owner: str, state: str, reason: str | None) -> None:
    with open_database(settings.db_url).write() as conn:
        values: dict[str, Any] = {"state": state, "lease_owner": None, "lease_until": None, "updated": now_ms()}
        if reason:
            values["reason"] = f"{firing['reason']}; {reason}"
        conn.execute(update(t.firings).where(t.firings.c.id == firing["id"], t.firings.c.lease_owner == owner)
                     .values(**values))
        append_event(conn, "automation", f"automation.{state}", firing["model"],
                     {"event": f"automation.{state}", "rule": firing["rule"], "firing": firing["id"],
                      "reason": reason or ""})


def _run_firing(firing_id: str, owner: str, settings: Settings) -> dict[str, Any]:
    db = open_database(settings.db_url)
    with db.read() as conn:
        firing = dict(conn.execute(select(t.firings).where(t.firings.c.id == firing_id)).first()._mapping)
        spec = conn.execute(select(t.rule_versions.c.spec).where(
            t.rule_versions.c.name == firing["rule"], t.rule_versions.c.version == firing["rule_version"])).first()
        steps = conn.execute(select(t.actions).where(t.actions.c.firing == firing_id)
                             .order_by(t.actions.c.position)).all()
    rule = rule_from_json(spec.spec)  # the version that fired, even if the rule changed since
    earlier: dict[str, dict[str, Any]] = {}
    for step in steps:
        if step.status == "done":
            earlier[step.kind] = json.loads(step.result)
            continue
        try:
            earlier[step.kind] = _run_step(step, rule, firing, owner, earlier, settings)
        except Stop as stop:
            _mark(db, step, "stopped", {"reason": stop.message, **stop.details})
            _finish(settings, firing, owner, "stopped", stop.message)
            return {"id": firing_id, "state": "stopped", "reason": stop.message}
        except MloopError as exc:
            _mark(db, step, "failed", {"error": exc.message})
            _finish(settings, firing, owner, "failed", f"{step.kind} failed: {exc.message}")
            return {"id": firing_id, "state": "failed", "reason": exc.message}
    _finish(settings, firing, owner, "done", None)
    return {"id": firing_id, "state": "done", "reason": ""}


def _run_step(step: Any, rule: Rule, firing: dict[str, Any], owner: str, earlier: dict[str, Any],
              settings: Settings) -> dict[str, Any]:
    db = open_database(settings.db_url)
    with db.write() as conn:
        conn.execute(update(t.actions).where(t.actions.c.firing == step.firing, t.actions.c.position == step.position,
                                             t.actions.c.status.in_(("pending", "running")))
                     .values(status="running", started=step.started or now_ms()))
    spec = json.loads(step.spec)
    if step.kind in ("promote", "rollback"):
        return move_alias(step, rule, firing, spec, earlier, settings)

    def record_external(external: str) -> None:
        with db.write() as conn:
            conn.execute(update(t.actions).where(t.actions.c.firing == step.firing,
                                                 t.actions.c.position == step.position).values(external_id=external))

    result = run_action(step.kind, spec, Context(settings, firing, rule, step.position, earlier, record_external,
                                                 step, step.external_id))
    _mark(db, step, "done", result)  # a no-op for an action that finished itself in its own transaction
    return result


def _mark(db: Any, step: Any, status: str, result: dict[str, Any]) -> None:
    with db.write() as conn:
        conn.execute(update(t.actions).where(and_(t.actions.c.firing == step.firing,
                                                  t.actions.c.position == step.position,
                                                  t.actions.c.status == "running"))
                     .values(status=status, result=dumps(result), finished=now_ms()))
