"""Purge: deleted runs and experiments removed for real, bytes included.

Capabilities above tracking take part without tracking knowing them:

* a guard (``RUN_GUARDS``) names the runs that must survive (the registry: runs a model version came from);
* a purge hook (``PURGE_HOOKS``) sees the runs about to be purged, and the runs the guards protect, before
  their rows go: it may add runs that go with them (a flow run's tasks), keep some back (everything of flows
  while a flow runs; a flow run one of whose tasks a guard protects, since purging it would take the task's rows
  with it), and returns what deletes its own files once the rows are gone (a flow run's content-addressed
  artifacts and task logs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, or_, select

from mloop.tracking import _tables as t
from mloop.tracking.entities import Lifecycle

if TYPE_CHECKING:
    from mloop.store.blob import BlobStore
    from mloop.store.sql import Database
    from mloop.tracking._sql import SqlTrackingRepository


@dataclass(frozen=True, slots=True)
class PurgeStores:
    """What a hook's cleanup reaches: the metadata database, the artifact store and the home folder (None
    when the repository was opened without one)."""

    db: Database
    blobs: BlobStore
    home: str | None


@dataclass(slots=True)
class PurgePlan:
    """A hook's part of one purge."""

    more: set[str] = field(default_factory=set)  # runs purged along with the doomed ones
    keep: set[str] = field(default_factory=set)  # doomed runs kept back this time
    reason: str = "flows"  # the result counts kept runs under "kept_for_<reason>"
    # doomed runs kept back because a protected run needs them (counted under "kept_for_registry")
    guarded: set[str] = field(default_factory=set)
    # called after the rows are deleted; returns the number of files it deleted
    cleanup: Callable[[PurgeStores], int] | None = None


# Each guard returns the run ids that must survive a purge.
RUN_GUARDS: list[Callable[[Connection], set[str]]] = []
# Each hook gets the run ids about to be purged and the protected run ids, and returns its plan.
PURGE_HOOKS: list[Callable[[Connection, set[str], set[str]], PurgePlan]] = []
# Modules that add a guard or a hook when imported. Purge imports them itself, so a caller that never imported
# them (a bare TrackingClient, a script) cannot purge a run a registered model version still needs, nor leave a
# purged flow run's files behind.
GUARD_MODULES = ("mloop.registry", "mloop.flows._retention")
CHUNK = 500


def chunks(ids: list[str] | set[str]) -> list[list[str]]:
    """``ids`` in slices short enough for one ``IN (...)`` on every database."""
    ordered = sorted(ids)
    return [ordered[i:i + CHUNK] for i in range(0, len(ordered), CHUNK)]


def purge(repo: SqlTrackingRepository, older_than_ms: int) -> dict[str, int]:
    import importlib

    for module in GUARD_MODULES:
        importlib.import_module(module)
    plans: list[PurgePlan] = []
    with repo.db.read() as conn:
        old_exps = [r.experiment_id for r in conn.execute(select(t.experiments.c.experiment_id).where(
            t.experiments.c.lifecycle_stage == Lifecycle.DELETED, t.experiments.c.deleted_time <= older_than_ms))]
        doomed = select(t.runs.c.run_id).where(or_(
            (t.runs.c.lifecycle_stage == Lifecycle.DELETED) & (t.runs.c.deleted_time <= older_than_ms),
            t.runs.c.experiment_id.in_(old_exps)))
        run_ids = {r.run_id for r in conn.execute(doomed)}
        protected: set[str] = set()
        for guard in RUN_GUARDS:
            protected |= guard(conn)
        kept_for_registry = run_ids & protected
        run_ids -= protected
        kept: dict[str, set[str]] = {}
        for hook in PURGE_HOOKS:
            plan = hook(conn, run_ids, protected)
            plans.append(plan)
            kept_for_registry |= (plan.more & protected) | (plan.guarded & run_ids)
            run_ids = (run_ids | (plan.more - protected)) - plan.guarded
            kept.setdefault(plan.reason, set()).update(plan.keep & run_ids)
            run_ids -= plan.keep
    files = sum(repo.blobs.delete(f"runs/{run_id}") for run_id in sorted(run_ids))
    with repo.db.write() as conn:
        for chunk in chunks(run_ids):
            for table in (t.metrics, t.latest_metrics, t.params, t.tags, t.artifacts, t.run_inputs):
                conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
            conn.execute(delete(t.runs).where(t.runs.c.run_id.in_(chunk)))
        removable = [e for e in old_exps if conn.execute(
            select(t.runs.c.run_id).where(t.runs.c.experiment_id == e).limit(1)).first() is None]
        if removable:
            conn.execute(delete(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(removable)))
            conn.execute(delete(t.experiments).where(t.experiments.c.experiment_id.in_(removable)))
    stores = PurgeStores(repo.db, repo.blobs, getattr(repo, "home", None))
    files += sum(plan.cleanup(stores) for plan in plans if plan.cleanup is not None)
    result = {"runs": len(run_ids), "experiments": len(removable), "files": files,
              "kept_for_registry": len(kept_for_registry)}
    result |= {f"kept_for_{reason}": len(ids) for reason, ids in kept.items()}
    return result
