"""Bulk metric writes: executemany on SQLite, COPY on PostgreSQL, the latest value per key, batch keys."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, delete
from sqlalchemy.exc import IntegrityError

from mloop._util.clock import now_ms
from mloop.errors import NotFoundError
from mloop.store.sql import Database
from mloop.tracking import _tables as t
from mloop.tracking.repository import MetricRow

_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES ({p}, {p}, {p}, {p}, {p}) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
    "timestamp = excluded.timestamp WHERE excluded.step > latest_metrics.step OR "
    "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)"
)


def insert_metrics(conn: Connection, dialect: str, rows: list[MetricRow]) -> None:
    """Append metric points and move each key's latest value forward, in the caller's transaction."""
    latest: dict[tuple[str, str], tuple[int, int, float | None]] = {}
    stored: list[tuple[str, str, int, int, float | None]] = []
    append = stored.append
    get = latest.get
    for run_id, key, value, step, ts in rows:
        v = None if value != value else value  # NaN -> NULL
        append((run_id, key, step, ts, v))
        ident = (run_id, key)
        best = get(ident)
        if best is None or step > best[0] or (step == best[0] and ts >= best[1]):
            latest[ident] = (step, ts, v)
    try:
        if dialect == "postgresql":
            _copy_postgres(conn, stored)
        else:
            conn.exec_driver_sql(
                "INSERT INTO metrics (run_id, key, step, timestamp, value) VALUES (?, ?, ?, ?, ?)", stored)
        placeholder = "%s" if dialect == "postgresql" else "?"
        conn.exec_driver_sql(_UPSERT_LATEST.format(p=placeholder),
                             [(r, k, v, s, ts) for (r, k), (s, ts, v) in latest.items()])
    except (IntegrityError, *_driver_integrity_errors(dialect)) as exc:
        missing = sorted({r for r, _ in latest})
        raise NotFoundError(f"Metrics were logged for a run that does not exist (one of {missing[:3]}).",
                            field="run_id") from exc


def _driver_integrity_errors(dialect: str) -> tuple[type[Exception], ...]:
    """COPY runs on the driver's cursor, so a missing run surfaces as psycopg's error, not SQLAlchemy's."""
    if dialect != "postgresql":
        return ()
    import psycopg

    return (psycopg.IntegrityError,)


def _copy_postgres(conn: Connection, stored: list[Any]) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy("COPY metrics (run_id, key, step, timestamp, value) FROM STDIN") as copy:
        for row in stored:
            copy.write_row(row)


# A retry arrives within seconds or minutes of the first attempt (the writer keeps a batch it could not
# send while its process lives); a day is far beyond that, and keeps the key table small.
BATCH_KEY_RETENTION_MS = 24 * 3600 * 1000
_PRUNE_EVERY_S = 600.0
_last_prune: dict[str, float] = {}


def claim_batch(conn: Connection, dialect: str, batch_id: str) -> bool:
    """Record ``batch_id`` as applied in the caller's transaction; False when it already was.

    ON CONFLICT DO NOTHING waits for a concurrent transaction holding the same key (PostgreSQL) or runs
    after it (SQLite writers are serialized), so two attempts of one batch never both apply.
    """
    p = "%s" if dialect == "postgresql" else "?"
    result = conn.exec_driver_sql(
        f"INSERT INTO metric_batches (batch_id, applied) VALUES ({p}, {p}) ON CONFLICT (batch_id) DO NOTHING",
        (batch_id, now_ms()))
    return bool(result.rowcount == 1)


def prune_batch_keys(db: Database) -> None:
    """Forget keys older than the retention, at most once every few minutes per process and database."""
    now = time.monotonic()
    if now - _last_prune.get(db.url, -_PRUNE_EVERY_S) < _PRUNE_EVERY_S:
        return
    _last_prune[db.url] = now
    with db.write() as conn:
        conn.execute(delete(t.metric_batches).where(t.metric_batches.c.applied < now_ms() - BATCH_KEY_RETENTION_MS))
