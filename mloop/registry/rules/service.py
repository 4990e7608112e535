"""``client.rules``: store and version rules, evaluate them, and apply the winner (audited)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from mloop._util.clock import now_ms
from mloop.errors import InvalidInputError, NotFoundError
from mloop.registry import _audit
from mloop.registry import _tables as t
from mloop.registry.entities import ApprovalRequest
from mloop.registry.rules.evaluate import Selection, candidate_frame, evaluate
from mloop.registry.rules.rule import Rule

if TYPE_CHECKING:
    from mloop.registry.client import RegistryClient

__all__ = ["Rules"]


class Rules:
    """Rules are stored by name with a version per change; evaluation is a dry run unless applied."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def save(self, rule: Rule | dict[str, Any] | str) -> int:
        """Store ``rule`` (a Rule, a mapping or YAML text) as the next version of its name; returns that version."""
        rule = as_rule(rule)
        with self.client.db.write() as conn:
            latest = conn.execute(select(func.max(t.selection_rules.c.version))
                                  .where(t.selection_rules.c.name == rule.name)).scalar() or 0
            conn.execute(insert(t.selection_rules).values(name=rule.name, version=latest + 1, body=rule.to_yaml(),
                                                          created=now_ms(), created_by=self.client.actor))
            event = _audit.record(conn, self.client.actor, "rule.saved", None, f"rules/{rule.name}/{latest + 1}",
                                  after=rule.to_dict())
        self.client._emit([event])
        return int(latest + 1)

    def get(self, name: str, version: int | None = None) -> Rule:
        r = t.selection_rules
        q = select(r.c.body).where(r.c.name == name).order_by(r.c.version.desc()).limit(1)
        if version is not None:
            q = q.where(r.c.version == version)
        with self.client.db.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFoundError(f"No stored rule named '{name}'" + (f" with version {version}" if version else "")
                                + "; save one with rules.save(...) or pass a YAML file.", field="rule")
        return Rule.from_yaml(row.body)

    def list(self) -> list[dict[str, Any]]:
        """Each stored rule's name, latest version and when it changed."""
        r = t.selection_rules
        q = select(r.c.name, func.max(r.c.version).label("version"), func.max(r.c.created).label("created")) \
            .group_by(r.c.name).order_by(r.c.name)
        with self.client.db.read() as conn:
            return [{"name": x.name, "version": x.version, "created": x.created} for x in conn.execute(q)]

    def resolve(self, rule: Rule | dict[str, Any] | str) -> Rule:
        """A Rule from an object, a mapping, YAML text, a YAML file path or a stored rule's name."""
        if isinstance(rule, str) and "\n" not in rule and ":" not in rule:
            path = Path(rule)
            if path.is_file():
                return Rule.from_yaml(path.read_text())
            if path.suffix in (".yaml", ".yml") or path.is_dir():
                raise NotFoundError(f"No rule file at '{rule}'.", field="rule")
            return self.get(rule)
        return as_rule(rule)

    def evaluate(self, rule: Rule | dict[str, Any] | str) -> Selection:
        """Dry run: the winner and why each other candidate lost."""
        chosen = self.resolve(rule)
        with self.client.db.read() as conn:
            frame = candidate_frame(conn)
        return evaluate(chosen, frame)

    def apply(self, rule: Rule | dict[str, Any] | str) -> Selection:
        """Evaluate, then move the rule's alias and/or environment to the winner (through any approval gate)."""
        selection = self.evaluate(rule)
        chosen, winner = selection.rule, selection.winner
        if winner is None:
            return selection
        if not chosen.alias and not chosen.environment:
            raise InvalidInputError(field="rule", value=chosen.name,
                                    expected="an 'alias' and/or 'environment' to apply the winner to")
        name, version = winner["name"], winner["version"]
        if chosen.environment:
            self.client.environments.get(chosen.environment)  # a missing environment fails before anything moves
        applied = []
        if chosen.alias:
            before = self.client.set_alias(name, chosen.alias, version)
            applied.append(f"alias {chosen.alias}: {before} -> {version}")
        if chosen.environment:
            outcome = self.client.environments.deploy(name, version, chosen.environment,
                                                      reason=f"rule {chosen.name}")
            applied.append(f"approval request {outcome.id} pending for {chosen.environment}"
                           if isinstance(outcome, ApprovalRequest)
                           else f"environment {chosen.environment}: {outcome.previous} -> {version}")
        with self.client.db.write() as conn:
            event = _audit.record(conn, self.client.actor, "rule.applied", name, f"rules/{chosen.name}",
                                  after={"winner": winner, "applied": applied, "rule": chosen.to_dict()})
        self.client._emit([event])
        return Selection(rule=chosen, winner=winner, candidates=selection.candidates, applied=applied)


def as_rule(rule: Rule | dict[str, Any] | str) -> Rule:
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, dict):
        return Rule.from_dict(rule)
    if isinstance(rule, str):
        return Rule.from_yaml(rule)
    raise InvalidInputError(field="rule", value=rule, expected="a Rule, a mapping or YAML text")
