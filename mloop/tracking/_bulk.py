"""Bulk metric writes: executemany on SQLite, COPY on PostgreSQL, and the latest value per key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from mloop.errors import NotFoundError
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
    except IntegrityError as exc:
        missing = sorted({r for r, _ in latest})
        raise NotFoundError(f"Metrics were logged for a run that does not exist (one of {missing[:3]}).",
                            field="run_id") from exc


def _copy_postgres(conn: Connection, stored: list[Any]) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy("COPY metrics (run_id, key, step, timestamp, value) FROM STDIN") as copy:
        for row in stored:
            copy.write_row(row)
