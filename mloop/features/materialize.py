"""Materialization: the latest row per entity in a time range, computed by DuckDB and bulk-written online.

The latest rows of the window are computed once into a DuckDB temporary table
(DuckDB spills to disk, so memory stays bounded), ordered by key, then streamed
in batches of ``batch_rows`` to the online store. Each finished batch is recorded
in the job's row of the metadata database, so a crashed run resumes at the first
unfinished batch. Online writes are monotonic (never older over newer), which
makes re-running any batch harmless. Per-feature statistics are stored at the end.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from mloop._util.clock import now_ms
from mloop._util.progress import track
from mloop.events.outbox import append_event
from mloop.features._tables import feature_materializations as jobs_t
from mloop.features._tables import feature_stats as stats_t
from mloop.features._tables import feature_watermarks as marks_t
from mloop.features.definitions import FeatureView
from mloop.features.online.base import OnlineStore
from mloop.features.sources import _lit, _q, epoch_ns, fetch_arrow
from mloop.store.sql import Database

__all__ = ["MaterializeResult", "materialize_view", "online_table", "watermark"]

SEP = "\x1f"


def online_table(project: str, view: str, version: int) -> str:
    return f"{project}__{view}__v{version}"


def _us(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1_000_000)


@dataclass(frozen=True)
class MaterializeResult:
    view: str
    version: int
    start: datetime | None
    end: datetime
    rows: int
    batches: int
    resumed_from: int
    seconds: float


def watermark(db: Database, project: str, view: str) -> int | None:
    """The view's watermark (epoch microseconds): everything up to it has been materialized."""
    with db.read() as conn:
        return conn.execute(sa.select(marks_t.c.watermark).where(marks_t.c.project == project,
                                                                 marks_t.c.view == view)).scalar()


def _set_watermark(db: Database, project: str, view: str, value: int) -> None:
    with db.write() as conn:
        current = conn.execute(sa.select(marks_t.c.watermark).where(
            marks_t.c.project == project, marks_t.c.view == view)).scalar()
        if current is None:
            conn.execute(sa.insert(marks_t).values(project=project, view=view, watermark=value, updated=now_ms()))
        elif value > current:
            conn.execute(sa.update(marks_t).where(marks_t.c.project == project, marks_t.c.view == view)
                         .values(watermark=value, updated=now_ms()))


def _latest_sql(con: Any, view: FeatureView, keys: list[str], start: datetime | None, end: datetime) -> str:
    ts = epoch_ns(view.timestamp, view.timezone)
    if view.timezone:
        scan = view.source.scan(con)
        where = f" WHERE {ts} <= {_ns(end)}"
        if start is not None:
            where += f" AND {ts} >= {_ns(start)}"
        scan = f"(SELECT * FROM {scan} AS w{where})"
    else:
        scan = view.source.scan(con, view.timestamp, start, end)
    group = ", ".join(_q(k) for k in keys)
    key_sql = (f"CAST({_q(keys[0])} AS VARCHAR)" if len(keys) == 1 else
               "concat_ws(" + _lit(SEP) + ", " + ", ".join(f"CAST({_q(k)} AS VARCHAR)" for k in keys) + ")")
    types = {f.name: f.dtype for f in view.schema}
    packed = ", ".join(f"{_q(f)} := CAST({_q(f)} AS {types[f].duckdb if types[f].name != 'Timestamp' else 'VARCHAR'})"
                       for f in view.feature_names)
    # every time as integer nanoseconds: one comparable type whatever the unit and zone of the source
    by = ts
    if view.created_timestamp:  # ties on event time: the latest created wins; no created time loses
        created = epoch_ns(view.created_timestamp, view.timezone)
        by = f"struct_pack(__t := {ts}, __c := coalesce({created}, {-(2 ** 63)}))"
    # arg_max over a struct of every feature: one hash aggregate on the native keys, no sort of the
    # source rows; keys become text only for the (few) latest rows. Online times are microseconds.
    return (f"SELECT {key_sql} AS __key, __t // 1000 AS __ts, unnest(__v) FROM (SELECT {group}, "
            f"max({ts}) AS __t, arg_max(struct_pack({packed}), {by}) AS __v FROM {scan} AS s "
            f"WHERE {ts} IS NOT NULL AND {' AND '.join(f'{_q(k)} IS NOT NULL' for k in keys)} GROUP BY {group})")


def _ns(when: datetime) -> int:
    """Nanoseconds since 1970 of an aware datetime (exact: no float on the way)."""
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def materialize_view(con: Any, db: Database, online: OnlineStore, project: str, view: FeatureView, version: int,
                     keys: list[str], start: datetime | None, end: datetime, batch_rows: int = 50_000,
                     on_batch: Callable[[int], None] | None = None) -> MaterializeResult:
    """Write the latest value per entity with event time in [start, end] to the online store (resumable)."""
    import time

    started = time.perf_counter()
    job_id = hashlib.sha1(f"{project}\0{view.name}\0{version}\0{_us(start)}\0{_us(end)}".encode()).hexdigest()
    resumed = _open_job(db, job_id, project, view.name, version, start, end)
    temp = f"__latest_{job_id[:12]}"
    # numbered in key order: batch k is rows [k * batch_rows, (k + 1) * batch_rows), the same after a restart
    con.execute(f"CREATE OR REPLACE TEMP TABLE {temp} AS SELECT row_number() OVER (ORDER BY __key) - 1 AS __n, * "
                f"FROM ({_latest_sql(con, view, keys, start, end)}) ORDER BY __n")
    total = con.execute(f"SELECT count(*) FROM {temp}").fetchall()[0][0]
    batches = max(1, math.ceil(total / batch_rows)) if total else 0
    table = online_table(project, view.name, version)
    n = len(view.feature_names)
    rows = 0
    try:
        for index in track(range(batches), description=f"materializing {view.name}", total=batches):
            if index < resumed:
                continue
            chunk = fetch_arrow(con, f"SELECT * EXCLUDE (__n) FROM {temp} WHERE __n >= {index * batch_rows} "
                                     f"AND __n < {(index + 1) * batch_rows}")
            columns = [chunk.column(i).to_pylist() for i in range(2, chunk.num_columns)]
            rows += online.write(table, n, chunk.column(0).to_pylist(), chunk.column(1).to_pylist(), columns)
            _progress(db, job_id, index + 1, rows)
            if on_batch is not None:
                on_batch(index)
        _store_stats(con, db, temp, project, view, version)
        _finish(db, job_id)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {temp}")
    _set_watermark(db, project, view.name, _us(end) or 0)
    return MaterializeResult(view.name, version, start, end, rows, batches, resumed, time.perf_counter() - started)


def _open_job(db: Database, job_id: str, project: str, view: str, version: int, start: datetime | None,
              end: datetime) -> int:
    """The number of batches already done by an unfinished run of the same job (0 for a fresh one)."""
    with db.write() as conn:
        row = conn.execute(sa.select(jobs_t).where(jobs_t.c.job_id == job_id)).first()
        if row is not None and row.status != "done":
            conn.execute(sa.update(jobs_t).where(jobs_t.c.job_id == job_id).values(status="running",
                                                                                     updated=now_ms()))
            return int(row.batches_done)
        values = {"project": project, "view": view, "version": version, "start_us": _us(start),
                  "end_us": _us(end), "batches_done": 0, "rows_written": 0, "status": "running",
                  "started": now_ms(), "updated": now_ms()}
        if row is None:
            conn.execute(sa.insert(jobs_t).values(job_id=job_id, **values))
        else:
            conn.execute(sa.update(jobs_t).where(jobs_t.c.job_id == job_id).values(**values))
        return 0


def _progress(db: Database, job_id: str, batches: int, rows: int) -> None:
    with db.write() as conn:
        conn.execute(sa.update(jobs_t).where(jobs_t.c.job_id == job_id).values(
            batches_done=batches, rows_written=rows,
            updated=now_ms()))


def _finish(db: Database, job_id: str) -> None:
    with db.write() as conn:
        conn.execute(sa.update(jobs_t).where(jobs_t.c.job_id == job_id).values(status="done", updated=now_ms()))
        job = conn.execute(sa.select(jobs_t).where(jobs_t.c.job_id == job_id)).one()
        append_event(conn, "features", "features.materialized", None, {  # committed with the end of the job
            "event": "features.materialized", "time": job.updated, "project": job.project, "view": job.view,
            "version": job.version, "rows": job.rows_written, "start_us": job.start_us, "end_us": job.end_us})


def _store_stats(con: Any, db: Database, temp: str, project: str, view: FeatureView, version: int) -> None:
    parts = []
    numeric = {f.name for f in view.schema if f.dtype.name in ("Float64", "Float32", "Int64", "Int32")}
    for f in view.feature_names:
        col = _q(f)
        mean = f"avg({col})" if f in numeric else "NULL"
        parts.append(f"SELECT {_lit(f)}, count({col}), count(*) - count({col}), CAST(min({col}) AS VARCHAR), "
                     f"CAST(max({col}) AS VARCHAR), CAST({mean} AS DOUBLE), count(DISTINCT {col}) "
                     f"FROM {temp}")
    rows = con.execute(" UNION ALL ".join(parts)).fetchall()
    when = now_ms()
    with db.write() as conn:
        conn.execute(sa.delete(stats_t).where(stats_t.c.project == project, stats_t.c.view == view.name,
                                              stats_t.c.version == version))
        conn.execute(sa.insert(stats_t), [
            {"project": project, "view": view.name, "version": version, "feature": r[0], "count": r[1],
             "nulls": r[2], "min": r[3], "max": r[4], "mean": r[5], "distinct": r[6], "computed": when}
            for r in rows])


def feature_stats(db: Database, project: str, view: str, version: int | None = None) -> list[dict[str, Any]]:
    """Per-feature statistics of the last materialization (count, nulls, min, max, mean, distinct)."""
    q = sa.select(stats_t).where(stats_t.c.project == project, stats_t.c.view == view)
    if version is not None:
        q = q.where(stats_t.c.version == version)
    with db.read() as conn:
        rows = conn.execute(q.order_by(stats_t.c.version.desc(), stats_t.c.feature)).all()
    if rows and version is None:
        rows = [r for r in rows if r.version == rows[0].version]
    return [{"feature": r.feature, "version": r.version, "count": r.count, "nulls": r.nulls, "min": r.min,
             "max": r.max, "mean": r.mean, "distinct": r.distinct} for r in rows]


def encode_keys(table: pa.Table, keys: list[str]) -> list[str]:
    """Entity keys as the online store's text keys (joined by an unprintable separator when composite)."""
    cols = [pc.cast(table.column(k), pa.string()) for k in keys]
    if len(cols) == 1:
        return cols[0].to_pylist()
    return pc.binary_join_element_wise(*cols, SEP).to_pylist()
