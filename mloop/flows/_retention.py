"""What ``mloop gc`` removes of a purged flow run besides its rows: its tasks, their artifacts and logs.

A flow run and each of its tasks are tracking runs; deleting the flow run (``mloop runs delete <id>``, or its
experiment) dooms its tasks with it, and a task alone is purged only with its flow run (a run with a hole
could not be resumed or inspected). Artifacts and captured logs live content-addressed under ``flows/cas/``,
shared by every task that produced the same bytes, so a blob is deleted only when no task left in the
database refers to it. The task's working log folder (``<home>/flows/logs/<run id>/``) goes too.

While any flow run is running nothing of flows is purged: a task may just have stored bytes equal to a doomed
blob (the store keeps one copy) and not yet recorded them; the next ``mloop gc`` after the runs end purges them.
A flow run that starts while gc works makes it keep the blobs (the rows go), for the same reason.

A flow run with a task a registered model came from is not purged (the registry's guard protects the task, the
flow run and its other tasks): its rows, artifacts and logs are what the model's lineage reads.

>>> from mloop.tracking._retention import PURGE_HOOKS
>>> flow_purge in PURGE_HOOKS
True
"""

from __future__ import annotations

import re
import shutil
import time
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
_PENDING = "flows/gc-pending"
_STALE_UPLOAD_SECONDS = 86_400  # one empty blob per sha256 a gc could not delete safely; the next gc does


def flow_purge(conn: Connection, doomed: set[str], protected: set[str]) -> PurgePlan:
    """The tasks of doomed flow runs go with them; the blobs and log folders only they used go after.

    A doomed flow run one of whose tasks is ``protected`` (a registered model came from it) stays, tasks, files
    and all: purging its row would take the task's rows, artifacts and logs with it, and the model's lineage
    reads the flow's parameters and every task's datasets.
    """
    flow_runs: set[str] = set()
    doomed_tasks: dict[str, str] = {}  # task id -> its flow run, for doomed runs that are tasks
    for chunk in chunks(doomed):
        flow_runs |= {r.run_id for r in conn.execute(
            select(ft.flow_runs.c.run_id).where(ft.flow_runs.c.run_id.in_(chunk)))}
        doomed_tasks |= {r.task_id: r.run_id for r in conn.execute(
            select(ft.flow_tasks.c.task_id, ft.flow_tasks.c.run_id).where(ft.flow_tasks.c.task_id.in_(chunk)))}
    checked_at = now_ms()
    if _flows_running(conn):
        return PurgePlan(keep=flow_runs | set(doomed_tasks))
    if not flow_runs and not doomed_tasks:  # only the blobs an earlier gc left for later, if any
        return PurgePlan(cleanup=lambda stores: _delete_unreferenced(stores, set(), checked_at)
                         + _delete_stale_uploads(stores))
    task_runs: dict[str, str] = {}  # every task of a doomed flow run -> that run
    for chunk in chunks(flow_runs):
        task_runs |= {r.task_id: r.run_id for r in conn.execute(
            select(ft.flow_tasks.c.task_id, ft.flow_tasks.c.run_id).where(ft.flow_tasks.c.run_id.in_(chunk)))}
    guarded_runs = {run for task, run in task_runs.items() if task in protected}
    purged_runs = flow_runs - guarded_runs
    guarded = guarded_runs | {task for task, run in doomed_tasks.items() if run in guarded_runs}
    orphaned = {task for task, run in doomed_tasks.items() if run not in flow_runs}
    gone = {task for task, run in task_runs.items() if run in purged_runs} - protected
    candidates: set[str] = set()
    for chunk in chunks(gone):
        candidates |= {r.sha256 for r in conn.execute(
            select(ft.flow_artifacts.c.sha256).where(ft.flow_artifacts.c.task_id.in_(chunk)))}
        for row in conn.execute(select(ft.flow_tasks.c.stdout_sha, ft.flow_tasks.c.stderr_sha)
                                .where(ft.flow_tasks.c.task_id.in_(chunk))):
            candidates |= {sha for sha in (row.stdout_sha, row.stderr_sha) if sha}

    def cleanup(stores: PurgeStores) -> int:
        return (_delete_unreferenced(stores, candidates, checked_at) + _delete_log_folders(stores, purged_runs)
                + _delete_stale_uploads(stores))

    return PurgePlan(more=gone, keep=orphaned, guarded=guarded, cleanup=cleanup)


def _flows_running(conn: Connection) -> bool:
    alive = now_ms() - _DEAD_AFTER_MS
    query = (select(ft.flow_runs.c.run_id).join(t.runs, t.runs.c.run_id == ft.flow_runs.c.run_id)
             .where(ft.flow_runs.c.status == RunStatus.RUNNING, t.runs.c.heartbeat >= alive).limit(1))
    return conn.execute(query).first() is not None


def _flows_started_since(conn: Connection, since_ms: int) -> bool:
    """Whether a flow runs now or a flow run was created at or after ``since_ms`` (it may have ended already)."""
    started = select(ft.flow_runs.c.run_id).where(ft.flow_runs.c.created >= since_ms).limit(1)
    return _flows_running(conn) or conn.execute(started).first() is not None


def _delete_unreferenced(stores: PurgeStores, candidates: set[str], checked_at: int) -> int:
    """Delete the blobs among ``candidates`` (and those an earlier gc left for later) that no task left in the
    database refers to.

    Nothing is deleted when a flow run started after the purge was planned (``checked_at``, when no flow ran):
    its task may have stored bytes equal to a candidate (the store keeps one copy) and recorded the row only
    after the references were read. The check comes after that read, right before the deletes; the blobs left
    are noted under ``flows/gc-pending/`` (their rows are gone already) and the next gc deletes them.
    """
    pending = {key.rsplit("/", 1)[-1] for key in stores.blobs.list(_PENDING)}
    candidates = {sha for sha in candidates | pending if _SHA256.fullmatch(sha)}
    if not candidates:
        return 0
    referenced: set[str] = set()
    with stores.db.read() as conn:
        for chunk in chunks(candidates):
            referenced |= {r.sha256 for r in conn.execute(
                select(ft.flow_artifacts.c.sha256).where(ft.flow_artifacts.c.sha256.in_(chunk)))}
            for column in (ft.flow_tasks.c.stdout_sha, ft.flow_tasks.c.stderr_sha):
                referenced |= {r[0] for r in conn.execute(select(column).where(column.in_(chunk)))}
    with stores.db.read() as conn:  # a fresh read: it sees flow runs recorded since the references were read
        started = _flows_started_since(conn, checked_at)
    if started:
        for sha in sorted(candidates - referenced - pending):
            stores.blobs.put_bytes(f"{_PENDING}/{sha}", b"")
        return 0
    deleted = sum(stores.blobs.delete(ArtifactStore.key(sha)) for sha in sorted(candidates - referenced))
    for sha in sorted(pending):
        stores.blobs.delete(f"{_PENDING}/{sha}")
    return deleted


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


def _delete_stale_uploads(stores: PurgeStores) -> int:
    """Remove the staging files of uploads in chunks through the server (``<home>/uploads``: flow and run
    artifacts) untouched for a day: their client gave up (a resumed upload appends to its file within seconds)."""
    folder = Path(stores.home or "", "uploads")
    if not stores.home or not folder.is_dir() or folder.is_symlink():
        return 0
    cutoff = time.time() - _STALE_UPLOAD_SECONDS
    stale = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink() and p.stat().st_mtime < cutoff]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


if flow_purge not in PURGE_HOOKS:
    PURGE_HOOKS.append(flow_purge)
