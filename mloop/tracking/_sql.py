"""TrackingRepository on SQLAlchemy Core: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import json
import math
import re
import uuid
from operator import itemgetter
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mloop._util.clock import now_ms
from mloop._util.names import check_artifact_path, check_name, check_text
from mloop.errors import AlreadyExistsError, ConflictError, DataIntegrityError, InvalidInputError, NotFoundError
from mloop.store.blob import BlobStore
from mloop.store.blob.base import hash_stream
from mloop.store.sql import Database
from mloop.tracking import _tables as t
from mloop.tracking._frames import runs_frame
from mloop.tracking._query import build_search
from mloop.tracking._values import check_json_depth, check_tags, decode_param, encode_param
from mloop.tracking.entities import Artifact, Dataset, Experiment, Lifecycle, Metric, Run, RunStatus
from mloop.tracking.repository import MetricRow

_CHUNK = 500

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_RUN_ID_OF = itemgetter(0)


class SqlTrackingRepository:
    """Runs, metrics and params in the metadata database; artifact bytes in a BlobStore."""

    def __init__(self, db: Database, blobs: BlobStore, heartbeat_timeout_ms: int = 300_000,
                 home: str | None = None) -> None:
        self.db = db
        self.blobs = blobs
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        self.home = home  # local files that purging a run also removes (a flow run's task logs)

    # ---------------------------------------------------------------- experiments
    def create_experiment(self, name: str, tags: dict[str, str] | None = None) -> Experiment:
        check_name(name, "experiment")
        tags = check_tags(tags or {})
        now = now_ms()
        try:
            with self.db.write() as conn:
                result = conn.execute(insert(t.experiments).values(
                    name=name, lifecycle_stage=Lifecycle.ACTIVE, creation_time=now, last_update_time=now))
                exp_id = result.inserted_primary_key[0]
                if tags:
                    conn.execute(insert(t.experiment_tags), [
                        {"experiment_id": exp_id, "key": k, "value": str(v)} for k, v in tags.items()])
        except IntegrityError as exc:
            raise AlreadyExistsError(f"An experiment named '{name}' already exists; pick another name "
                                     "or use it with get_experiment_by_name.", field="name") from exc
        return self.get_experiment(str(exp_id))

    def _experiment_rows(self, conn: Connection, where: Any) -> list[Experiment]:
        rows = conn.execute(select(t.experiments).where(where).order_by(t.experiments.c.experiment_id)).all()
        ids = [r.experiment_id for r in rows]
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for r in conn.execute(select(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(ids))):
                tags[r.experiment_id][r.key] = r.value
        return [Experiment(experiment_id=str(r.experiment_id), name=r.name, lifecycle_stage=r.lifecycle_stage,
                           creation_time=r.creation_time, last_update_time=r.last_update_time,
                           tags=tags[r.experiment_id]) for r in rows]

    def get_experiment(self, experiment_id: str) -> Experiment:
        exp_int = _experiment_int(experiment_id)
        with self.db.read() as conn:
            found = self._experiment_rows(conn, t.experiments.c.experiment_id == exp_int)
        if not found:
            raise NotFoundError(f"No experiment with id '{experiment_id}'.", field="experiment_id")
        return found[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.db.read() as conn:
            found = self._experiment_rows(conn, t.experiments.c.name == name)
        return found[0] if found else None

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        where = True if include_deleted else t.experiments.c.lifecycle_stage == Lifecycle.ACTIVE
        with self.db.read() as conn:
            return self._experiment_rows(conn, where)

    def _update_experiment(self, experiment_id: str, **values: Any) -> None:
        exp_int = _experiment_int(experiment_id)
        try:
            with self.db.write() as conn:
                done = conn.execute(update(t.experiments).where(t.experiments.c.experiment_id == exp_int)
                                    .values(last_update_time=now_ms(), **values)).rowcount
        except IntegrityError as exc:
            raise AlreadyExistsError(f"An experiment named '{values.get('name')}' already exists.",
                                     field="name") from exc
        if not done:
            raise NotFoundError(f"No experiment with id '{experiment_id}'.", field="experiment_id")

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._update_experiment(experiment_id, name=check_name(new_name, "name"))

    def delete_experiment(self, experiment_id: str) -> None:
        self._update_experiment(experiment_id, lifecycle_stage=Lifecycle.DELETED, deleted_time=now_ms())

    def restore_experiment(self, experiment_id: str) -> None:
        self._update_experiment(experiment_id, lifecycle_stage=Lifecycle.ACTIVE, deleted_time=None)

    # ---------------------------------------------------------------- runs
    def create_run(self, experiment_id: str, name: str | None, user: str, tags: dict[str, str],
                   parent_run_id: str | None, description: str, run_id: str | None = None) -> Run:
        """A new run; a ``run_id`` the caller chose makes a retry return the run the first call created."""
        if run_id is not None:
            existing = self._created_before(run_id, experiment_id)
            if existing is not None:
                return existing
        exp_int = _experiment_int(experiment_id)
        run_id = run_id or uuid.uuid4().hex
        name = check_name(name, "run_name") if name else f"run-{run_id[:8]}"
        tags, user = check_tags(tags or {}), check_text(user, "user", 256)
        description = check_text(description or "", "description")
        now = now_ms()
        artifact_uri = self.blobs.url(f"runs/{run_id}/artifacts")
        try:
            # one transaction checks the experiment and the parent and inserts: a run costs one round trip
            with self.db.write() as conn:
                exp = conn.execute(select(t.experiments.c.name, t.experiments.c.lifecycle_stage)
                                   .where(t.experiments.c.experiment_id == exp_int)).first()
                if exp is None:
                    raise NotFoundError(f"No experiment with id '{experiment_id}'.", field="experiment_id")
                if exp.lifecycle_stage != Lifecycle.ACTIVE:
                    raise ConflictError(f"Experiment '{exp.name}' is deleted; restore it before starting runs "
                                        "in it.", field="experiment")
                if parent_run_id is not None:
                    self._require_run(conn, parent_run_id)
                conn.execute(insert(t.runs).values(
                    run_id=run_id, experiment_id=exp_int, name=name, status=RunStatus.RUNNING,
                    user=user, description=description, start_time=now, heartbeat=now,
                    lifecycle_stage=Lifecycle.ACTIVE, parent_run_id=parent_run_id, artifact_uri=artifact_uri))
                if tags:
                    conn.execute(insert(t.tags), [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()])
        except IntegrityError:  # the same id inserted meanwhile: a retry that raced its first attempt
            existing = self._created_before(run_id, experiment_id)
            if existing is None:
                raise
            return existing
        return Run(run_id=run_id, experiment_id=str(exp_int), name=name, status=RunStatus.RUNNING, user=user,
                   description=description, start_time=now, end_time=None, lifecycle_stage=Lifecycle.ACTIVE,
                   parent_run_id=parent_run_id, artifact_uri=artifact_uri, params={}, metrics={}, tags=tags)

    def _created_before(self, run_id: str, experiment_id: str) -> Run | None:
        """The run ``run_id`` if a call already created it in ``experiment_id``; ConflictError if elsewhere."""
        if not _RUN_ID.fullmatch(str(run_id)):
            raise InvalidInputError(field="run_id", value=run_id, expected="32 lowercase hexadecimal characters")
        try:
            run = self.get_run(run_id)
        except NotFoundError:
            return None
        if str(run.experiment_id) != str(experiment_id):
            raise ConflictError(f"Run id {run_id} is taken by a run of another experiment.", field="run_id")
        return run

    def get_run(self, run_id: str) -> Run:
        self._reap_dead_runs()
        with self.db.read() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.run_id == str(run_id))).first()
            if row is None:
                raise NotFoundError(f"No run with id '{run_id}'.", field="run_id")
            params = {r.key: decode_param(r.value, r.vtype)
                      for r in conn.execute(select(t.params).where(t.params.c.run_id == run_id))}
            metrics = {r.key: _value_out(r.value)
                       for r in conn.execute(select(t.latest_metrics).where(t.latest_metrics.c.run_id == run_id))}
            tags = {r.key: r.value for r in conn.execute(select(t.tags).where(t.tags.c.run_id == run_id))}
        return _run(row, params, metrics, tags)

    def _reap_dead_runs(self) -> None:
        """Runs whose process stopped sending heartbeats are marked killed."""
        cutoff = now_ms() - self.heartbeat_timeout_ms
        stale = and_(t.runs.c.status == RunStatus.RUNNING, t.runs.c.heartbeat < cutoff)
        with self.db.read() as conn:
            if conn.execute(select(t.runs.c.run_id).where(stale).limit(1)).first() is None:
                return
        with self.db.write() as conn:
            conn.execute(update(t.runs).where(stale).values(status=RunStatus.KILLED, end_time=t.runs.c.heartbeat))

    def end_run(self, run_id: str, status: RunStatus) -> None:
        status = RunStatus(status)
        with self.db.write() as conn:
            done = conn.execute(update(t.runs).where(t.runs.c.run_id == run_id)
                                .values(status=status, end_time=now_ms())).rowcount
        if not done:
            raise NotFoundError(f"No run with id '{run_id}'.", field="run_id")

    def heartbeat(self, run_ids: list[str]) -> None:
        if run_ids:
            with self.db.write() as conn:
                conn.execute(update(t.runs).where(t.runs.c.run_id.in_(run_ids),
                                                  t.runs.c.status == RunStatus.RUNNING).values(heartbeat=now_ms()))

    def _update_run(self, run_id: str, **values: Any) -> None:
        with self.db.write() as conn:
            done = conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(**values)).rowcount
        if not done:
            raise NotFoundError(f"No run with id '{run_id}'.", field="run_id")

    def update_run(self, run_id: str, name: str | None = None, description: str | None = None) -> None:
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = check_name(name, "run_name")
        if description is not None:
            values["description"] = check_text(str(description), "description")
        if values:
            self._update_run(run_id, **values)

    def move_run(self, run_id: str, experiment_id: str) -> None:
        exp = self.get_experiment(experiment_id)
        self._update_run(run_id, experiment_id=int(exp.experiment_id))

    def delete_run(self, run_id: str) -> None:
        self._update_run(run_id, lifecycle_stage=Lifecycle.DELETED, deleted_time=now_ms())

    def restore_run(self, run_id: str) -> None:
        self._update_run(run_id, lifecycle_stage=Lifecycle.ACTIVE, deleted_time=None)

    # ---------------------------------------------------------------- params, tags, metrics
    def log_params(self, run_id: str, params: dict[str, Any], ended_ok: bool = False) -> None:
        """Store params; ConflictError when a key already holds another value or the run has ended (unless
        ``ended_ok``: MLflow's protocol lets a client add to a finished run)."""
        rows = {k: encode_param(k, v) for k, v in params.items()}
        if not rows:
            return
        with self.db.write() as conn:
            self._require_running(conn, [run_id], "params", ended_ok)
            existing = {r.key: (r.value, r.vtype) for r in conn.execute(
                select(t.params.c.key, t.params.c.value, t.params.c.vtype)
                .where(t.params.c.run_id == run_id, t.params.c.key.in_(list(rows))))}
            for key, (text, vtype, _) in rows.items():
                if key in existing and existing[key] != (text, vtype):
                    old = decode_param(*existing[key])
                    raise ConflictError(
                        f"Param '{key}' of run {run_id} is already {old!r}; it cannot change to "
                        f"{decode_param(text, vtype)!r}. Params are inputs: start a new run to try another value.",
                        field=f"params.{key}")
            new = [{"run_id": run_id, "key": k, "value": v[0], "vtype": v[1], "num": v[2]}
                   for k, v in rows.items() if k not in existing]
            for i in range(0, len(new), _CHUNK):
                conn.execute(insert(t.params), new[i:i + _CHUNK])

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        if not tags:
            return
        tags = check_tags(tags)
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            conn.execute(delete(t.tags).where(t.tags.c.run_id == run_id, t.tags.c.key.in_(list(tags))))
            conn.execute(insert(t.tags), [{"run_id": run_id, "key": k, "value": str(v)} for k, v in tags.items()])

    def _require_run(self, conn: Connection, run_id: str) -> None:
        if conn.execute(select(t.runs.c.run_id).where(t.runs.c.run_id == run_id)).first() is None:
            raise NotFoundError(f"No run with id '{run_id}'.", field="run_id")

    def _require_running(self, conn: Connection, run_ids: list[str], what: str, ended_ok: bool = False) -> None:
        """NotFoundError for a missing run, ConflictError for one that has ended: it takes no more data.

        On PostgreSQL the rows stay share-locked to the end of the caller's transaction, so a concurrent
        end_run waits for this write instead of slipping between the check and the insert (SQLite writers
        are serialized already).
        """
        found: dict[str, str] = {}
        for i in range(0, len(run_ids), _CHUNK):
            query = select(t.runs.c.run_id, t.runs.c.status).where(t.runs.c.run_id.in_(run_ids[i:i + _CHUNK]))
            if self.db.dialect == "postgresql":
                query = query.with_for_update(read=True)
            found.update(conn.execute(query).tuples().all())
        for run_id in run_ids:
            status = found.get(run_id)
            if status is None:
                raise NotFoundError(f"No run with id '{run_id}'.", field="run_id")
            if status != RunStatus.RUNNING and not ended_ok:
                raise ConflictError(f"Run {run_id} has ended (status {status}); it takes no more {what}. "
                                    "Start a new run to record more.", field="run_id")

    def log_metrics(self, rows: list[MetricRow], batch_id: str | None = None, ended_ok: bool = False) -> None:
        """Store metric points in one transaction; a ``batch_id`` already applied makes this a no-op; points for
        a run that has ended are refused unless ``ended_ok``."""
        if not rows:
            return
        from mloop.tracking._bulk import claim_batch, insert_metrics, prune_batch_keys

        run_ids = list(set(map(_RUN_ID_OF, rows)))
        with self.db.write() as conn:
            if batch_id is not None and not claim_batch(conn, self.db.dialect, batch_id):
                return  # a retry of a batch whose first attempt committed (its answer was lost)
            self._require_running(conn, run_ids, "metrics", ended_ok)
            insert_metrics(conn, self.db.dialect, rows)
        if batch_id is not None:
            prune_batch_keys(self.db)

    def metric_history(self, run_id: str, key: str, max_points: int | None = None) -> list[Metric]:
        p = "%s" if self.db.dialect == "postgresql" else "?"
        sql = (f"SELECT {p}, value, timestamp, step FROM metrics WHERE run_id = {p} AND key = {p} "
               "ORDER BY step, timestamp")
        with self.db.read() as conn:
            rows = conn.exec_driver_sql(sql, (key, run_id, key)).fetchall()
            if not rows:
                self._require_run(conn, run_id)
        points = list(map(Metric._make, rows))
        if any(m.value is None for m in points):
            points = [m._replace(value=math.nan) if m.value is None else m for m in points]
        if max_points is not None and len(points) > max_points:
            from mloop.tracking._downsample import downsample

            points = downsample(points, max_points)
        return points

    # ---------------------------------------------------------------- datasets
    def log_input(self, run_id: str, dataset: Dataset, context: str) -> Dataset:
        check_text(dataset.name, "dataset.name", 256)
        check_text(dataset.source, "dataset.source")
        check_json_depth("dataset.schema", dataset.schema)
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            existing = conn.execute(select(t.datasets).where(t.datasets.c.dataset_id == dataset.dataset_id)).first()
            if existing is None:
                conn.execute(insert(t.datasets).values(
                    dataset_id=dataset.dataset_id, name=dataset.name, digest=dataset.digest, rows=dataset.rows,
                    schema=json.dumps(dataset.schema), source=dataset.source, created=dataset.created))
            link = {"run_id": run_id, "dataset_id": dataset.dataset_id, "context": context}
            if conn.execute(select(t.run_inputs).filter_by(**link)).first() is None:
                conn.execute(insert(t.run_inputs).values(**link))
        return dataset if existing is None else _dataset(existing)

    def list_inputs(self, run_id: str) -> list[tuple[Dataset, str]]:
        query = (select(t.datasets, t.run_inputs.c.context)
                 .join(t.run_inputs, t.run_inputs.c.dataset_id == t.datasets.c.dataset_id)
                 .where(t.run_inputs.c.run_id == run_id))
        with self.db.read() as conn:
            return [(_dataset(r), r.context) for r in conn.execute(query)]

    def runs_with_dataset(self, digest: str) -> list[str]:
        query = (select(t.run_inputs.c.run_id).join(t.datasets, t.run_inputs.c.dataset_id == t.datasets.c.dataset_id)
                 .where(t.datasets.c.digest == digest).distinct())
        with self.db.read() as conn:
            return [r.run_id for r in conn.execute(query)]

    # ---------------------------------------------------------------- artifacts
    def put_artifact(self, run_id: str, path: str, source: Path) -> Artifact:
        check_artifact_path(path)
        with self.db.read() as conn:
            self._require_run(conn, run_id)
        info = self.blobs.put_file(f"runs/{run_id}/artifacts/{path}", source)
        artifact = Artifact(path=path, size=info.size, sha256=info.sha256, created=now_ms())
        with self.db.write() as conn:
            conn.execute(delete(t.artifacts).where(t.artifacts.c.run_id == run_id, t.artifacts.c.path == path))
            conn.execute(insert(t.artifacts).values(run_id=run_id, path=path, size=artifact.size,
                                                    sha256=artifact.sha256, created=artifact.created))
        return artifact

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        if prefix:
            check_artifact_path(prefix.rstrip("/"), "prefix")
        query = select(t.artifacts).where(t.artifacts.c.run_id == run_id).order_by(t.artifacts.c.path)
        if prefix:
            under = t.artifacts.c.path.startswith(prefix.rstrip("/") + "/")
            query = query.where((t.artifacts.c.path == prefix) | under)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            if not rows:
                self._require_run(conn, run_id)
        return [Artifact(path=r.path, size=r.size, sha256=r.sha256, created=r.created) for r in rows]

    def get_artifact(self, run_id: str, path: str, dest: Path) -> Path:
        found = self.list_artifacts(run_id, check_artifact_path(path))
        if not found:
            raise NotFoundError(f"Run {run_id} has no artifact at '{path}'.", field="path")
        for art in found:
            target = dest / art.path if len(found) > 1 or art.path != path else dest
            self.blobs.get_file(f"runs/{run_id}/artifacts/{art.path}", target)
            verify_download(art, target)
        return dest

    def delete_artifact(self, run_id: str, path: str) -> int:
        found = self.list_artifacts(run_id, check_artifact_path(path))
        if not found:
            raise NotFoundError(f"Run {run_id} has no artifact at '{path}'.", field="path")
        for art in found:
            self.blobs.delete(f"runs/{run_id}/artifacts/{art.path}")
        with self.db.write() as conn:
            conn.execute(delete(t.artifacts).where(t.artifacts.c.run_id == run_id,
                                                   t.artifacts.c.path.in_([a.path for a in found])))
        return len(found)

    # ---------------------------------------------------------------- search and retention
    def search_runs(self, experiment_ids: list[str], filter: str = "", order_by: list[str] | None = None,
                    limit: int | None = None, include_deleted: bool = False) -> pd.DataFrame:
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidInputError(field="limit", value=limit, expected="a positive whole number or None")
        self._reap_dead_runs()
        exp_ints = [_experiment_int(e) for e in experiment_ids]
        query, where = build_search(exp_ints, filter, order_by, limit, include_deleted)
        with self.db.read() as conn:
            runs = conn.execute(query).all()
            ids = [r.run_id for r in runs]
            # the runs' own ids when few (an index lookup each), else the query that found them: one statement
            # per table, however many runs (the limited query keeps its order and limit to find the same runs)
            scope = ids if len(ids) <= _CHUNK else (
                select(t.runs.c.run_id).where(where) if limit is None else query.with_only_columns(t.runs.c.run_id))
            params = _children(conn, t.params, scope, ids, t.params.c.key, t.params.c.value, t.params.c.vtype)
            metrics = _children(conn, t.latest_metrics, scope, ids, t.latest_metrics.c.key, t.latest_metrics.c.value)
            tags = _children(conn, t.tags, scope, ids, t.tags.c.key, t.tags.c.value)
        return runs_frame(runs, params, metrics, tags)

    def purge(self, older_than_ms: int) -> dict[str, int]:
        """Delete for real the runs and experiments deleted at or before ``older_than_ms``, bytes included."""
        from mloop.tracking._retention import purge

        return purge(self, older_than_ms)


def verify_download(artifact: Artifact, target: Path) -> None:
    """Refuse (and remove) a downloaded file whose sha256 is not the one recorded when it was logged: bytes
    changed in the store are never handed over silently."""
    if not artifact.sha256:  # nothing was recorded to check against
        return
    with target.open("rb") as stream:
        actual = hash_stream(stream)[1]
    if actual != artifact.sha256:
        target.unlink(missing_ok=True)
        raise DataIntegrityError(path=artifact.path, expected=artifact.sha256, actual=actual)


def _children(conn: Connection, table: Any, scope: Any, ids: list[str], *cols: Any) -> list[Any]:
    if not ids:
        return []
    if isinstance(scope, list):
        rows: list[Any] = []
        for i in range(0, len(scope), _CHUNK):
            rows += conn.execute(select(table.c.run_id, *cols).where(table.c.run_id.in_(scope[i:i + _CHUNK]))).all()
        return rows
    return conn.execute(select(table.c.run_id, *cols).where(table.c.run_id.in_(scope))).all()


def _experiment_int(experiment_id: Any) -> int:
    text = str(experiment_id)
    if text.isascii() and text.isdigit() and 0 < len(text) <= 9:  # str.isdigit also takes '²', which int() does not
        return int(text)
    raise NotFoundError(f"No experiment with id '{experiment_id}' (ids are whole numbers; "
                            "look experiments up by name with get_experiment_by_name).",
                        field="experiment_id")


def _value_out(value: float | None) -> float:
    return math.nan if value is None else value


def _run(row: Any, params: dict[str, Any], metrics: dict[str, float], tags: dict[str, str]) -> Run:
    return Run(run_id=row.run_id, experiment_id=str(row.experiment_id), name=row.name, status=RunStatus(row.status),
               user=row.user, description=row.description, start_time=row.start_time, end_time=row.end_time,
               lifecycle_stage=row.lifecycle_stage, parent_run_id=row.parent_run_id, artifact_uri=row.artifact_uri,
               params=params, metrics=metrics, tags=tags)


def _dataset(row: Any) -> Dataset:
    return Dataset(dataset_id=row.dataset_id, name=row.name, digest=row.digest, rows=row.rows,
                   schema=json.loads(row.schema), source=row.source, created=row.created)
