"""The feature registry: every definition stored as immutable versions in the metadata database.

``apply`` never overwrites: a changed definition becomes version N+1, an unchanged
one keeps its version, and every version stays readable (reads may pin one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mloop._util.clock import now_ms
from mloop.errors import ConflictError, NotFoundError
from mloop.events.outbox import append_event
from mloop.features._tables import feature_definitions as defs_t
from mloop.features.definitions import Definition, fingerprint
from mloop.store.sql import Database

__all__ = ["Change", "FeatureRegistry", "Plan", "Versioned"]

KIND_LABEL = {"entity": "entity", "feature_view": "feature view", "on_demand_feature_view": "on-demand view",
              "feature_service": "feature service"}


@dataclass(frozen=True, slots=True)
class Versioned:
    """One stored version of a definition."""

    kind: str
    name: str
    version: int
    spec: dict[str, Any]
    fingerprint: str
    created: int
    creator: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "version": self.version, "spec": self.spec,
                "fingerprint": self.fingerprint, "created": self.created, "creator": self.creator}


@dataclass(frozen=True, slots=True)
class Change:
    """What apply would do with one definition."""

    kind: str
    name: str
    action: str  # create | update | unchanged
    old_version: int | None
    new_version: int
    changed: tuple[str, ...] = ()

    def __str__(self) -> str:
        label = f"{KIND_LABEL.get(self.kind, self.kind)} {self.name}"
        if self.action == "create":
            return f"+ {label} (new, v{self.new_version})"
        if self.action == "update":
            return f"~ {label} v{self.old_version} -> v{self.new_version} (changed: {', '.join(self.changed)})"
        return f"  {label} v{self.old_version} (unchanged)"


@dataclass
class Plan:
    """The difference between a set of definitions and the registry."""

    changes: list[Change] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def __str__(self) -> str:
        if not self.changes:
            return "No definitions."
        lines = [str(c) for c in self.changes]
        n = sum(c.action != "unchanged" for c in self.changes)
        lines.append(f"{n} to apply, {len(self.changes) - n} unchanged.")
        return "\n".join(lines)


class FeatureRegistry:
    """Versioned definitions of one project in the metadata database."""

    def __init__(self, db: Database, project: str = "default") -> None:
        self.db = db
        self.project = project

    def _row(self, row: Any) -> Versioned:
        return Versioned(row.kind, row.name, row.version, json.loads(row.spec), row.fingerprint, row.created,
                         row.creator)

    def get(self, kind: str, name: str, version: int | None = None) -> Versioned:
        """A definition at ``version`` (the latest when None); NotFoundError names what exists."""
        q = sa.select(defs_t).where(defs_t.c.project == self.project, defs_t.c.kind == kind, defs_t.c.name == name)
        q = q.where(defs_t.c.version == version) if version else q.order_by(defs_t.c.version.desc()).limit(1)
        with self.db.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            known = sorted(v.name for v in self.list(kind))
            what = f"{KIND_LABEL.get(kind, kind)} '{name}'" + (f" version {version}" if version else "")
            raise NotFoundError(f"No {what} in the feature registry (project '{self.project}'); "
                                f"known: {known or 'none'}. Run `mloop features apply` first.", field=kind)
        return self._row(row)

    def find(self, name: str, kinds: Iterable[str], version: int | None = None) -> Versioned | None:
        for kind in kinds:
            try:
                return self.get(kind, name, version)
            except NotFoundError:
                continue
        return None

    def list(self, kind: str | None = None) -> list[Versioned]:
        """The latest version of every definition (of one kind when given), by kind and name."""
        latest = (sa.select(defs_t.c.kind, defs_t.c.name, sa.func.max(defs_t.c.version).label("v"))
                  .where(defs_t.c.project == self.project).group_by(defs_t.c.kind, defs_t.c.name).subquery())
        q = sa.select(defs_t).join(latest, sa.and_(defs_t.c.kind == latest.c.kind, defs_t.c.name == latest.c.name,
                                                   defs_t.c.version == latest.c.v))
        q = q.where(defs_t.c.project == self.project)
        if kind:
            q = q.where(defs_t.c.kind == kind)
        with self.db.read() as conn:
            rows = conn.execute(q.order_by(defs_t.c.kind, defs_t.c.name)).all()
        return [self._row(r) for r in rows]

    def history(self, kind: str, name: str) -> list[Versioned]:
        q = sa.select(defs_t).where(defs_t.c.project == self.project, defs_t.c.kind == kind, defs_t.c.name == name)
        with self.db.read() as conn:
            return [self._row(r) for r in conn.execute(q.order_by(defs_t.c.version))]

    def search(self, text: str = "", tag: str | None = None, entity: str | None = None) -> list[Versioned]:
        """Definitions whose name or description contains ``text``, with tag ``key`` or ``key=value``,
        or (feature views) over ``entity``."""
        found = []
        for item in self.list():
            spec = item.spec
            if text and text.lower() not in (item.name + " " + spec.get("description", "")).lower():
                continue
            if tag:
                key, _, value = tag.partition("=")
                tags = spec.get("tags", {})
                if key not in tags or (value and tags[key] != value):
                    continue
            if entity and entity not in spec.get("entities", []) and item.name != entity:
                continue
            found.append(item)
        return found

    def plan(self, definitions: Iterable[Definition]) -> Plan:
        """What ``apply`` would store, without storing anything."""
        plan = Plan()
        current = {(v.kind, v.name): v for v in self.list()}
        for d in definitions:
            spec = d.spec()
            old = current.get((d.kind, d.name))
            if old is None:
                plan.changes.append(Change(d.kind, d.name, "create", None, 1))
            elif old.fingerprint == fingerprint(spec):
                plan.changes.append(Change(d.kind, d.name, "unchanged", old.version, old.version))
            else:
                changed = tuple(sorted(k for k in set(spec) | set(old.spec) if spec.get(k) != old.spec.get(k)))
                plan.changes.append(Change(d.kind, d.name, "update", old.version, old.version + 1, changed))
        return plan

    def store(self, definitions: Iterable[Definition], creator: str) -> Plan:
        """Insert a new version of every changed definition in one transaction (no validation here)."""
        definitions = list(definitions)
        plan = self.plan(definitions)
        by_key = {(d.kind, d.name): d for d in definitions}
        rows = []
        for change in plan.changes:
            if change.action == "unchanged":
                continue
            spec = by_key[(change.kind, change.name)].spec()
            rows.append({"project": self.project, "kind": change.kind, "name": change.name,
                         "version": change.new_version, "spec": json.dumps(spec, sort_keys=True, default=str),
                         "fingerprint": fingerprint(spec), "created": now_ms(), "creator": creator})
        if rows:
            try:
                with self.db.write() as conn:
                    conn.execute(sa.insert(defs_t), rows)
                    for row in rows:  # the webhooks' events, committed with the definitions
                        append_event(conn, "features", "features.applied", None,
                               {"event": "features.applied", "time": row["created"], "actor": creator,
                                **{k: row[k] for k in ("project", "kind", "name", "version", "fingerprint")}})
            except IntegrityError as exc:
                raise ConflictError("Another apply stored the same definitions at the same moment; "
                                    "run `mloop features plan` and apply again.") from exc
        return plan
