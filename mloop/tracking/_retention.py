"""Purge: deleted runs and experiments removed for real, bytes included.

Capabilities above tracking (the registry) register a guard that names the runs
they still need; those are never purged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, or_, select

from mloop.tracking import _tables as t
from mloop.tracking.entities import Lifecycle

if TYPE_CHECKING:
    from mloop.tracking._sql import SqlTrackingRepository

# Each guard returns the run ids that must survive a purge.
RUN_GUARDS: list[Callable[[Connection], set[str]]] = []
# Modules that add a guard when imported. Purge imports them itself, so a caller that never imported the
# registry (a bare TrackingClient, a script) cannot purge a run a registered model version still needs.
GUARD_MODULES = ("mloop.registry",)


def purge(repo: SqlTrackingRepository, older_than_ms: int) -> dict[str, int]:
    import importlib

    for module in GUARD_MODULES:
        importlib.import_module(module)
    with repo.db.read() as conn:
        old_exps = [r.experiment_id for r in conn.execute(select(t.experiments.c.experiment_id).where(
            t.experiments.c.lifecycle_stage == Lifecycle.DELETED, t.experiments.c.deleted_time <= older_than_ms))]
        doomed = select(t.runs.c.run_id).where(or_(
            (t.runs.c.lifecycle_stage == Lifecycle.DELETED) & (t.runs.c.deleted_time <= older_than_ms),
            t.runs.c.experiment_id.in_(old_exps)))
        run_ids = [r.run_id for r in conn.execute(doomed)]
        protected: set[str] = set()
        for guard in RUN_GUARDS:
            protected |= guard(conn)
    kept = [r for r in run_ids if r in protected]
    run_ids = [r for r in run_ids if r not in protected]
    files = sum(repo.blobs.delete(f"runs/{run_id}") for run_id in run_ids)
    with repo.db.write() as conn:
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i:i + 500]
            for table in (t.metrics, t.latest_metrics, t.params, t.tags, t.artifacts, t.run_inputs):
                conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
            conn.execute(delete(t.runs).where(t.runs.c.run_id.in_(chunk)))
        removable = [e for e in old_exps if conn.execute(
            select(t.runs.c.run_id).where(t.runs.c.experiment_id == e).limit(1)).first() is None]
        if removable:
            conn.execute(delete(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(removable)))
            conn.execute(delete(t.experiments).where(t.experiments.c.experiment_id.in_(removable)))
    return {"runs": len(run_ids), "experiments": len(removable), "files": files, "kept_for_registry": len(kept)}
