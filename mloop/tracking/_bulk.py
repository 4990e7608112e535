"""Bulk metric writes: multi-row INSERTs on SQLite, COPY on PostgreSQL, the latest value per key, batch keys."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from functools import lru_cache
from itertools import accumulate, chain
from operator import itemgetter
from queue import SimpleQueue
from typing import Any

from sqlalchemy import Connection, delete
from sqlalchemy.exc import IntegrityError

from mloop._util.clock import now_ms
from mloop._util.names import check_text
from mloop.errors import NotFoundError
from mloop.store.sql import Database
from mloop.tracking import _tables as t
from mloop.tracking.repository import MetricRow

# A chunk of points ready for its INSERT: its parameters in one flat tuple, and its latest point per (run, key).
Prepared = tuple[tuple[Any, ...], dict[tuple[str, str], MetricRow]]

_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES ({p}, {p}, {p}, {p}, {p}) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
    "timestamp = excluded.timestamp WHERE excluded.step > latest_metrics.step OR "
    "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)"
)


def latest_points(rows: list[MetricRow]) -> dict[tuple[str, str], MetricRow]:
    """Each (run, key)'s latest point: the highest (step, timestamp), the last logged on a tie.

    A stable sort on (step, timestamp) and a dict that keeps the last point per key both run in C, where a
    Python loop over every point cost as much as the insert. The runs and keys of a batch are read from
    this dict's few keys rather than from every point.
    """
    # sorted by (step, timestamp) as two stable sorts on one int each: no key tuple per point to build
    by_time = sorted(sorted(rows, key=_TIME), key=_STEP)  # timsort: linear on points logged in order
    return dict(zip(map(_RUN_KEY, by_time), by_time, strict=True))  # the last wins: the highest (step, ts)


def insert_metrics(conn: Connection, dialect: str, rows: list[MetricRow]) -> None:
    """Append metric points and move each key's latest value forward, in the caller's transaction.

    The rows go to the driver as they come (SQLite stores a NaN as NULL by itself). SQLite finds the latest
    points while it stores the rows; PostgreSQL first, since COPY would refuse a NUL in a key less clearly.
    """
    try:
        if dialect == "postgresql":
            latest = latest_points(rows)
            _refuse_nul_keys(latest)
            _copy_postgres(conn, rows)
        else:
            latest = _insert_sqlite(conn, rows)
            _refuse_nul_keys(latest)  # raised before the commit: the transaction stores none of the rows
        placeholder = "%s" if dialect == "postgresql" else "?"
        conn.exec_driver_sql(_UPSERT_LATEST.format(p=placeholder),
                             [(r, k, None if v != v else v, s, ts) for r, k, v, s, ts in latest.values()])
    except (IntegrityError, *_driver_integrity_errors(dialect)) as exc:
        missing = sorted(set(map(_RUN, rows)))
        raise NotFoundError(f"Metrics were logged for a run that does not exist (one of {missing[:3]}).",
                            field="run_id") from exc


def _refuse_nul_keys(latest: dict[tuple[str, str], MetricRow]) -> None:
    for _, key in latest:
        if "\x00" in key:  # the bulk statements skip the NUL check of every parameter (see _TRUSTED_ROWS)
            check_text(key, "metric key")


# The rows' text (run ids and keys) was checked before it reached here, so the engine's hook that scans
# every text parameter for NUL is told to skip these statements: on 32,000 parameters a statement it cost
# as much Python time as SQLite took to store them, all of it holding the GIL the logging thread needs.
_TRUSTED_ROWS = {"mloop_checked_parameters": True}


# Points per INSERT statement. Each statement costs the writer thread two waits for the GIL (after the step
# and after the reset), up to the 5 ms switch interval each while the caller's loop holds it, so fewer, larger
# statements store more per wait. The prepared statement stays in the connection's cache, about 0.5 KB per
# point, which bounds the size; SQLite's limit on bound parameters (32,766 in a default build, 250,000 in
# Debian's) may bound it lower.
_ROWS_PER_STATEMENT = 16_384


def _statement_rows(conn: Connection) -> int:
    limit = conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, min(_ROWS_PER_STATEMENT, limit // 5))


# The connection keeps its last 128 prepared statements, and preparing one costs about 3 us per point. A batch's
# last chunk of any length would be prepared anew each time and could fill that cache with statements of up to
# 16,000 points (hundreds of MB); cut from a few fixed sizes, each is prepared once per connection.
_EXACT_BELOW = 64


def _statement_sizes(points: int, largest: int) -> list[int]:
    """How many points each INSERT of a batch of ``points`` takes: ``largest``, then powers of two, then a
    last statement of fewer than 64 points (at most 72 sizes in all, and 9 statements past the full ones)."""
    full, rest = divmod(points, largest)
    sizes = [largest] * full
    power = 1 << (largest.bit_length() - 1)
    while rest >= _EXACT_BELOW:
        if rest >= power:
            sizes.append(power)
            rest -= power
        power >>= 1
    return sizes + [rest] if rest else sizes


def _insert_sqlite(conn: Connection, rows: list[MetricRow]) -> dict[tuple[str, str], MetricRow]:
    """Store the rows thousands per statement and return their latest points (see ``latest_points``).

    executemany steps SQLite once per row and takes the GIL back each time, which starves the thread that
    is logging; one statement per chunk releases it for the whole chunk. While SQLite stores a chunk, the
    next chunks' parameters and latest points are made in a helper thread (see ``_prepared``).
    """
    candidates: list[MetricRow] = []
    for params, chunk_latest in _prepared(rows, _statement_sizes(len(rows), _statement_rows(conn))):
        conn.exec_driver_sql(_multi_row_insert(len(params) // 5), params, execution_options=_TRUSTED_ROWS)
        candidates += chunk_latest.values()
    # each chunk's latest points, in the order logged: the latest of them are the latest of the rows
    return latest_points(candidates)


def _prepared(rows: list[MetricRow], sizes: list[int]) -> Iterator[Prepared]:
    """Each chunk of the rows (of ``sizes`` rows each) as (its flattened parameters, its latest points), in order.

    With more than one chunk a helper thread makes them ahead of the caller: that Python work then holds the
    GIL while SQLite stores the previous chunk without it, instead of adding to the time SQLite waits.
    """
    ends = list(accumulate(sizes))
    chunks = [rows[end - size:end] for size, end in zip(sizes, ends, strict=True)]
    if len(chunks) == 1:
        yield _prepare(chunks[0])
        return
    # unbounded: the helper never waits, and ends on its own if the caller stops reading (a failed INSERT)
    ready: SimpleQueue[Prepared | BaseException] = SimpleQueue()

    def prepare_all() -> None:
        for chunk in chunks:
            try:
                ready.put(_prepare(chunk))
            except BaseException as exc:  # handed to the caller, which raises it
                ready.put(exc)
                return

    try:
        threading.Thread(target=prepare_all, name="mloop-metrics-prepare", daemon=True).start()
    except RuntimeError:  # no new threads while the interpreter shuts down (the flush at exit): do it here
        yield from map(_prepare, chunks)
        return
    for _ in chunks:
        item = ready.get()
        if isinstance(item, BaseException):
            raise item
        yield item


def _prepare(chunk: list[MetricRow]) -> Prepared:
    return tuple(chain.from_iterable(chunk)), latest_points(chunk)


@lru_cache(maxsize=16)  # the sizes used most; a text is up to 260 KB
def _multi_row_insert(n: int) -> str:
    return "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * n)


_STEP = itemgetter(3)
_TIME = itemgetter(4)
_RUN_KEY = itemgetter(0, 1)
_RUN = itemgetter(0)


def _driver_integrity_errors(dialect: str) -> tuple[type[Exception], ...]:
    """COPY runs on the driver's cursor, so a missing run surfaces as psycopg's error, not SQLAlchemy's."""
    if dialect != "postgresql":
        return ()
    import psycopg

    return (psycopg.IntegrityError,)


def _copy_postgres(conn: Connection, rows: list[MetricRow]) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy("COPY metrics (run_id, key, value, step, timestamp) FROM STDIN") as copy:
        write = copy.write_row
        for row in rows:
            if row[2] != row[2]:  # NaN is stored as NULL, as on SQLite
                row = (row[0], row[1], None, row[3], row[4])
            write(row)


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
