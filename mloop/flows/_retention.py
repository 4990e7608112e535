"""What ``mloop gc`` removes of a purged flow run besides its rows: its tasks, their artifacts and logs.

A flow run and each of its tasks are tracking runs; deleting the flow run (``mloop runs delete <id>``, or its
experiment) dooms its tasks with it, and a task alone is purged only with its flow run (a run with a hole
could not be resumed or inspected). Artifacts and captured logs live content-addressed under ``flows/cas/``,
shared by every task that produced the same bytes, so a blob is deleted only when no task left in the
database refers to it. The task's working log folder (``<home>/flows/logs/<run id>/``) goes too.

While any flow run is running nothing of flows is purged: a task may just have stored bytes equal to a doomed
blob (the store keeps one copy) and not yet recorded them; the next ``mloop gc`` after the runs end purges them.

>>> from mloop.tracking._retention import PURGE_HOOKS
>>> flow_purge in PURGE_HOOKS
True
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from sqlalchemy import Connection, select

from mloop._util.clock import now_ms
from mloop.flows import _tables as ft
from mloop.flows.artifacts import ArtifactStore
from mloop.tracking import _tables as t
from mloop.tracking._retention import PURGE_HOOKS, PurgePlan, PurgeStores, chunks
from mloop.tracking.entities import RunStatus

__all__ = ["flow_purge"]

# A flow run whose orchestrator sent no heartbeat for this long is dead, not running (as the flows' reaper says).
_DEAD_AFTER_MS = 300_000
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def flow_purge(conn: Connection, doomed: set[str]) -> PurgePlan:
    """The tasks of doomed flow runs go with them; the blobs and log folders only they used go after."""
    flow_runs: set[str] = set()
    tasks_of_doomed: set[str] = set()
    doomed_tasks: dict[str, str] = {}  # task id -> its flow run, for doomed runs that are tasks
    for chunk in chunks(doomed):
        flow_runs |= {r.run_id for r in conn.execute(
            select(ft.flow_runs.c.run_id).where(ft.flow_runs.c.run_id.in_(chunk)))}
        doomed_tasks |= {r.task_id: r.run_id for r in conn.execute(
            select(ft.flow_tasks.c.task_id, ft.flow_tasks.c.run_id).where(ft.flow_tasks.c.task_id.in_(chunk)))}
    if not flow_runs and not doomed_tasks:
        return PurgePlan()
    if _flows_running(conn):
        return PurgePlan(keep=flow_runs | set(doomed_tasks))
    for chunk in chunks(flow_runs):
        tasks_of_doomed |= {r.task_id for r in conn.execute(
            select(ft.flow_tasks.c.task_id).where(ft.flow_tasks.c.run_id.in_(chunk)))}
    orphaned = {task for task, run in doomed_tasks.items() if run not in flow_runs}
    gone = (tasks_of_doomed | set(doomed_tasks)) - orphaned
    candidates: set[str] = set()
    for chunk in chunks(gone):
        candidates |= {r.sha256 for r in conn.execute(
            select(ft.flow_artifacts.c.sha256).where(ft.flow_artifacts.c.task_id.in_(chunk)))}
        for row in conn.execute(select(ft.flow_tasks.c.stdout_sha, ft.flow_tasks.c.stderr_sha)
                                .where(ft.flow_tasks.c.task_id.in_(chunk))):
            candidates |= {sha for sha in (row.stdout_sha, row.stderr_sha) if sha}

    def cleanup(stores: PurgeStores) -> int:
        return _delete_unreferenced(stores, candidates) + _delete_log_folders(stores, flow_runs)

    return PurgePlan(more=tasks_of_doomed, keep=orphaned, cleanup=cleanup)


def _flows_running(conn: Connection) -> bool:
    alive = now_ms() - _DEAD_AFTER_MS
    query = (select(ft.flow_runs.c.run_id).join(t.runs, t.runs.c.run_id == ft.flow_runs.c.run_id)
             .where(ft.flow_runs.c.status == RunStatus.RUNNING, t.runs.c.heartbeat >= alive).limit(1))
    return conn.execute(query).first() is not None


def _delete_unreferenced(stores: PurgeStores, candidates: set[str]) -> int:
    """Delete the blobs among ``candidates`` that no task left in the database refers to."""
    referenced: set[str] = set()
    with stores.db.read() as conn:
        for chunk in chunks(candidates):
            referenced |= {r.sha256 for r in conn.execute(
                select(ft.flow_artifacts.c.sha256).where(ft.flow_artifacts.c.sha256.in_(chunk)))}
            for column in (ft.flow_tasks.c.stdout_sha, ft.flow_tasks.c.stderr_sha):
                referenced |= {r[0] for r in conn.execute(select(column).where(column.in_(chunk)))}
    store = ArtifactStore(stores.blobs)
    return sum(stores.blobs.delete(store.key(sha)) for sha in sorted(candidates - referenced) if _SHA256.fullmatch(sha))


def _delete_log_folders(stores: PurgeStores, flow_runs: set[str]) -> int:
    """Remove ``<home>/flows/logs/<run id>`` of each purged flow run (what the local executor wrote)."""
    if not stores.home:
        return 0
    root = Path(stores.home) / "flows" / "logs"
    count = 0
    for run_id in sorted(flow_runs):
        if not _RUN_ID.fullmatch(run_id):  # one plain name: never a path that leaves the logs folder
            continue
        folder = root / run_id
        if folder.is_dir() and not folder.is_symlink():
            count += sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
    return count


if flow_purge not in PURGE_HOOKS:
    PURGE_HOOKS.append(flow_purge)
