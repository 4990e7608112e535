"""Flow metadata in the metadata database: flow runs and tasks are tracking runs plus a row of their own.

Only references (sha256, encoding, size) are stored here; artifact bytes live in the blob store.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import delete, desc, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mloop._util.clock import now_ms
from mloop.errors import InvalidInputError, NotFoundError
from mloop.flows import _tables as ft
from mloop.flows._rows import RunRow, TaskRow, run_row, task_row
from mloop.flows.artifacts import ArtifactRef
from mloop.flows.repository import RECORD_KINDS, Record
from mloop.store.sql import Database
from mloop.tracking import _tables as t
from mloop.tracking.entities import Lifecycle, RunStatus

_STATUSES = frozenset(s.value for s in RunStatus)
__all__ = ["RunRow", "SqlFlowRepository", "TaskRow"]


class SqlFlowRepository:
    """Reads and writes of flow runs, tasks, artifact references, tags and schedule starts (see repository.py)."""

    def __init__(self, db: Database, artifact_uri: Any, heartbeat_timeout_ms: int = 300_000) -> None:
        self.db = db
        self._artifact_uri = artifact_uri  # run_id -> URL of its tracking artifacts
        self.heartbeat_timeout_ms = heartbeat_timeout_ms

    # ---------------------------------------------------------------- runs
    def _run_values(self, run_id: str, experiment_id: str, name: str, user: str, parent: str | None,
                    now: int, status: str = RunStatus.RUNNING) -> dict[str, Any]:
        return dict(run_id=run_id, experiment_id=int(experiment_id), name=name[:256], status=status, user=user,
                    description="", start_time=now, heartbeat=now, lifecycle_stage=Lifecycle.ACTIVE,
                    parent_run_id=parent, artifact_uri=self._artifact_uri(run_id))

    def experiment_id(self, name: str) -> str:
        """The id of the tracking experiment ``name`` (a flow's runs live in the experiment named after it)."""
        where = t.experiments.c.name == name
        with self.db.read() as conn:
            found = conn.execute(select(t.experiments.c.experiment_id, t.experiments.c.lifecycle_stage)
                                 .where(where)).first()
        if found is None:
            now = now_ms()
            try:
                with self.db.write() as conn:
                    conn.execute(insert(t.experiments).values(name=name, lifecycle_stage=Lifecycle.ACTIVE,
                                                              creation_time=now, last_update_time=now))
            except IntegrityError:  # another process created it meanwhile
                pass
            with self.db.read() as conn:
                found = conn.execute(select(t.experiments.c.experiment_id, t.experiments.c.lifecycle_stage)
                                     .where(where)).first()
        assert found is not None
        if found.lifecycle_stage != Lifecycle.ACTIVE:
            from mloop.errors import ConflictError

            raise ConflictError(f"Experiment '{name}' is deleted; restore it (mloop experiments restore) to run "
                                "this flow.", field="experiment")
        return str(found.experiment_id)

    def create_run(self, *, experiment_id: str, flow_name: str, file: str, params: dict[str, Any],
                   tags: list[str], run_tags: dict[str, str], origin: str | None, executor: str, user: str,
                   run_id: str | None = None) -> str:
        from mloop.tracking._values import encode_param

        run_id = run_id or uuid.uuid4().hex
        now = now_ms()
        encoded = {k: encode_param(k, v) for k, v in params.items()}
        with self.db.write() as conn:
            conn.execute(insert(t.runs).values(**self._run_values(run_id, experiment_id, f"{flow_name}-{run_id[:8]}",
                                                                  user, None, now)))
            if run_tags:  # an empty list would insert one row of NULLs
                conn.execute(insert(t.tags), [{"run_id": run_id, "key": k, "value": v} for k, v in run_tags.items()])
            if encoded:
                conn.execute(insert(t.params), [{"run_id": run_id, "key": k, "value": text, "vtype": vtype, "num": num}
                                                for k, (text, vtype, num) in encoded.items()])
            conn.execute(insert(ft.flow_runs).values(
                run_id=run_id, flow_name=flow_name, file=file, status=RunStatus.RUNNING,
                params=json.dumps(params, default=str), origin_run_id=origin, executor=executor, created=now))
            if tags:
                conn.execute(insert(ft.flow_run_tags), [{"run_id": run_id, "tag": tag} for tag in sorted(set(tags))])
        return run_id

    def end_run(self, run_id: str, status: str) -> None:
        now = now_ms()
        with self.db.write() as conn:
            conn.execute(update(ft.flow_runs).where(ft.flow_runs.c.run_id == run_id).values(status=status, ended=now))
            conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(status=status, end_time=now))

    def heartbeat(self, run_ids: list[str]) -> None:
        if run_ids:
            with self.db.write() as conn:
                conn.execute(update(t.runs).where(t.runs.c.run_id.in_(run_ids)).values(heartbeat=now_ms()))

    def _reap_dead_runs(self) -> None:
        """Runs whose orchestrator stopped sending heartbeats (kill -9, a lost machine) are marked killed, with
        their unfinished tasks; otherwise they would show as running forever."""
        cutoff = now_ms() - self.heartbeat_timeout_ms
        dead = (select(ft.flow_runs.c.run_id).join(t.runs, t.runs.c.run_id == ft.flow_runs.c.run_id)
                .where(ft.flow_runs.c.status == RunStatus.RUNNING, t.runs.c.heartbeat < cutoff))
        with self.db.read() as conn:
            run_ids = [r.run_id for r in conn.execute(dead)]
        if not run_ids:
            return
        try:
            self._mark_killed(run_ids)
        except SQLAlchemyError:  # a reader without write access still reads; the next writer reaps
            pass

    def _mark_killed(self, run_ids: list[str]) -> None:
        now = now_ms()
        with self.db.write() as conn:
            conn.execute(update(ft.flow_runs).where(ft.flow_runs.c.run_id.in_(run_ids),
                                                    ft.flow_runs.c.status == RunStatus.RUNNING)
                         .values(status=RunStatus.KILLED, ended=now))
            tasks = select(ft.flow_tasks.c.task_id).where(ft.flow_tasks.c.run_id.in_(run_ids),
                                                          ft.flow_tasks.c.status == RunStatus.RUNNING)
            task_ids = [r.task_id for r in conn.execute(tasks)]
            if task_ids:
                conn.execute(update(ft.flow_tasks).where(ft.flow_tasks.c.task_id.in_(task_ids))
                             .values(status=RunStatus.KILLED, ended=now, error="the flow run stopped (no heartbeat)"))
            conn.execute(update(t.runs).where(t.runs.c.run_id.in_(run_ids + task_ids),
                                              t.runs.c.status == RunStatus.RUNNING)
                         .values(status=RunStatus.KILLED, end_time=now))

    def get_run(self, run_id: str) -> RunRow:
        self._reap_dead_runs()
        with self.db.read() as conn:
            row = conn.execute(select(ft.flow_runs).where(ft.flow_runs.c.run_id == run_id)).first()
            if row is None and 6 <= len(run_id) < 32:
                prefix = ft.flow_runs.c.run_id.startswith(run_id, autoescape=True)  # '%' or '_' match themselves
                rows = conn.execute(select(ft.flow_runs).where(prefix).limit(3)).all()
                if len(rows) > 1:
                    raise InvalidInputError(field="run_id", value=run_id, expected="a prefix of one run; it starts "
                                            f"{', '.join(r.run_id[:12] for r in rows)}..., give more characters")
                row = rows[0] if rows else None
            if row is None:
                raise NotFoundError(f"No flow run with id '{run_id}'; `mloop flow list` shows them.", field="run_id")
            tags = [r.tag for r in conn.execute(select(ft.flow_run_tags.c.tag)
                                                .where(ft.flow_run_tags.c.run_id == row.run_id))]
        return run_row(row, sorted(tags))

    def list_runs(self, flow_name: str | None = None, tag: str | None = None, status: str | None = None,
                  limit: int | None = None, where: Any = None) -> list[RunRow]:
        if status is not None and status not in _STATUSES:
            raise InvalidInputError(field="status", value=status, expected=f"one of {sorted(_STATUSES)}")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise InvalidInputError(field="limit", value=limit, expected="a whole number >= 1, or None for all")
        self._reap_dead_runs()
        query = select(ft.flow_runs)
        if flow_name:
            query = query.where(ft.flow_runs.c.flow_name == flow_name)
        if status:
            query = query.where(ft.flow_runs.c.status == status)
        if tag:
            query = query.where(ft.flow_runs.c.run_id.in_(
                select(ft.flow_run_tags.c.run_id).where(ft.flow_run_tags.c.tag == tag)))
        if where is not None:
            query = query.where(where)
        query = query.order_by(desc(ft.flow_runs.c.created), desc(ft.flow_runs.c.run_id))
        if limit:
            query = query.limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            tags: dict[str, list[str]] = {r.run_id: [] for r in rows}
            if rows:
                for r in conn.execute(select(ft.flow_run_tags).where(ft.flow_run_tags.c.run_id.in_(list(tags)))):
                    tags[r.run_id].append(r.tag)
        return [run_row(r, sorted(tags[r.run_id])) for r in rows]

    def flow_names(self) -> list[str]:
        with self.db.read() as conn:
            return [r[0] for r in conn.execute(select(ft.flow_runs.c.flow_name).distinct()
                                               .order_by(ft.flow_runs.c.flow_name))]

    def add_tags(self, run_id: str, tags: list[str]) -> None:
        with self.db.write() as conn:
            have = {r[0] for r in conn.execute(select(ft.flow_run_tags.c.tag)
                                               .where(ft.flow_run_tags.c.run_id == run_id))}
            new = sorted(set(tags) - have)
            if new:
                conn.execute(insert(ft.flow_run_tags), [{"run_id": run_id, "tag": tag} for tag in new])

    def remove_tags(self, run_id: str, tags: list[str]) -> None:
        with self.db.write() as conn:
            conn.execute(delete(ft.flow_run_tags).where(ft.flow_run_tags.c.run_id == run_id,
                                                        ft.flow_run_tags.c.tag.in_(tags)))

    # ---------------------------------------------------------------- tasks
    def record(self, records: list[Record]) -> None:
        """Store a batch of the recorder's writes (task starts, ends, attempts) in one transaction."""
        with self.db.write() as conn:
            for kind, values in records:
                if kind not in RECORD_KINDS:
                    raise InvalidInputError(field="record", value=kind, expected=f"one of {sorted(RECORD_KINDS)}")
                getattr(self, f"{kind}_in")(conn, **values)

    def start_task(self, *, run_id: str, experiment_id: str, step: str, path: str, inputs: list[str],
                   cache_key: str | None, log_dir: str | None, user: str, task_id: str | None = None) -> str:
        task_id = task_id or uuid.uuid4().hex
        with self.db.write() as conn:
            self.start_task_in(conn, task_id=task_id, run_id=run_id, experiment_id=experiment_id, step=step,
                               path=path, inputs=inputs, cache_key=cache_key, log_dir=log_dir, user=user)
        return task_id

    def start_task_in(self, conn: Any, *, task_id: str, run_id: str, experiment_id: str, step: str, path: str,
                      inputs: list[str], cache_key: str | None, log_dir: str | None, user: str,
                      now: int | None = None) -> None:
        now = now or now_ms()
        conn.execute(insert(t.runs).values(**self._run_values(task_id, experiment_id, path, user, run_id, now)))
        conn.execute(insert(t.tags), [{"run_id": task_id, "key": "mloop.flow.step", "value": step}])
        conn.execute(insert(ft.flow_tasks).values(
            task_id=task_id, run_id=run_id, step=step, path=path, status=RunStatus.RUNNING, attempt=0,
            inputs=json.dumps(inputs), cache_key=cache_key, log_dir=log_dir, started=now))

    def set_attempt(self, task_id: str, attempt: int) -> None:
        with self.db.write() as conn:
            self.set_attempt_in(conn, task_id, attempt)

    def set_attempt_in(self, conn: Any, task_id: str, attempt: int) -> None:
        conn.execute(update(ft.flow_tasks).where(ft.flow_tasks.c.task_id == task_id).values(attempt=attempt))

    def finish_task(self, task_id: str, status: str, **values: Any) -> None:
        with self.db.write() as conn:
            self.finish_task_in(conn, task_id, status, **values)

    def finish_task_in(self, conn: Any, task_id: str, status: str, *, transition: dict[str, Any] | None = None,
                       artifacts: dict[str, ArtifactRef] | None = None, error: str | None = None,
                       stdout_sha: str | None = None, stderr_sha: str | None = None,
                       reused_from: str | None = None, now: int | None = None) -> None:
        now = now or now_ms()
        conn.execute(update(ft.flow_tasks).where(ft.flow_tasks.c.task_id == task_id).values(
            status=status, transition=json.dumps(transition) if transition is not None else None, error=error,
            stdout_sha=stdout_sha, stderr_sha=stderr_sha, ended=now, reused_from=reused_from))
        conn.execute(update(t.runs).where(t.runs.c.run_id == task_id).values(status=status, end_time=now))
        if artifacts:
            conn.execute(insert(ft.flow_artifacts), [
                {"task_id": task_id, "name": name, "sha256": ref[0], "encoding": ref[1], "size": ref[2]}
                for name, ref in artifacts.items()])

    def tasks(self, run_id: str) -> list[TaskRow]:
        with self.db.read() as conn:
            rows = conn.execute(select(ft.flow_tasks).where(ft.flow_tasks.c.run_id == run_id)
                                .order_by(ft.flow_tasks.c.started, ft.flow_tasks.c.path)).all()
        return [task_row(r) for r in rows]

    def get_task(self, task_id: str) -> TaskRow:
        with self.db.read() as conn:
            row = conn.execute(select(ft.flow_tasks).where(ft.flow_tasks.c.task_id == task_id)).first()
        if row is None:
            raise NotFoundError(f"No flow task with id '{task_id}'.", field="task_id")
        return task_row(row)

    def cached_task(self, cache_key: str) -> TaskRow | None:
        """The newest successful task computed (not reused) with this cache key; not one whose failure @catch
        recorded (its error may be transient)."""
        with self.db.read() as conn:
            row = conn.execute(select(ft.flow_tasks).where(
                ft.flow_tasks.c.cache_key == cache_key, ft.flow_tasks.c.status == RunStatus.FINISHED,
                ft.flow_tasks.c.error.is_(None))
                .order_by(desc(ft.flow_tasks.c.ended)).limit(1)).first()
        return task_row(row) if row is not None else None

    def artifacts(self, task_ids: list[str]) -> dict[str, dict[str, ArtifactRef]]:
        found: dict[str, dict[str, ArtifactRef]] = {tid: {} for tid in task_ids}
        if not task_ids:
            return found
        with self.db.read() as conn:
            for r in conn.execute(select(ft.flow_artifacts).where(ft.flow_artifacts.c.task_id.in_(task_ids))):
                found[r.task_id][r.name] = ArtifactRef(r.sha256, r.encoding, r.size)
        return found

    # ---------------------------------------------------------------- schedules
    def claim_schedule_start(self, flow_name: str, due: int, cron: str, file: str) -> bool:
        """Record that ``flow_name`` starts for ``due``; False when another scheduler already did."""
        try:
            with self.db.write() as conn:
                conn.execute(insert(ft.flow_schedule_starts).values(flow_name=flow_name, due=due, cron=cron,
                                                                    file=file, started=now_ms()))
        except IntegrityError:
            return False
        return True

    def set_schedule_run(self, flow_name: str, due: int, run_id: str | None) -> None:
        with self.db.write() as conn:
            conn.execute(update(ft.flow_schedule_starts).where(ft.flow_schedule_starts.c.flow_name == flow_name,
                                                               ft.flow_schedule_starts.c.due == due)
                         .values(run_id=run_id))

    def schedule_starts(self, flow_name: str | None = None) -> list[dict[str, Any]]:
        query = select(ft.flow_schedule_starts).order_by(ft.flow_schedule_starts.c.due)
        if flow_name:
            query = query.where(ft.flow_schedule_starts.c.flow_name == flow_name)
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

