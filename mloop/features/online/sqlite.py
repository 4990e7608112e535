"""The SQLite online store: one WITHOUT ROWID table per feature-view version, read with one prepared
statement per table on a per-thread ``sqlite3`` connection (no SQLAlchemy on the hot path).

A row is ``(k, ts, v)``: the entity key, the event time (epoch microseconds, for monotonic upserts) and
the row packed as JSON ``[event_us, v0, v1, ...]`` by orjson, the same encoding as the Redis store.
Reading 100 entities then costs one B-tree lookup and one short byte string each, and one
``orjson.loads`` for all of them, instead of a Python object per SQLite column value. Tables written
by earlier versions (one column per feature) are converted on first use.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from mloop.errors import InvalidInputError
from mloop.features.online.base import BatchReader, Reader, Row, null_row, parse_rows

_CONVERT_BATCH = 10_000  # rows per step when converting an old table


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteOnlineStore:
    """Latest values in a local SQLite file (WAL), shared by threads and processes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._created: set[str] = set()  # tables known to exist in the packed layout

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False,
                                   cached_statements=256)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _ensure(self, table: str) -> None:
        if table in self._created:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # one process creates or converts; the others then see it done
        try:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({_q(table)})")]
            if columns and columns != ["k", "ts", "v"]:
                self._convert(conn, table, columns)
            elif not columns:
                conn.execute(f"CREATE TABLE {_q(table)} (k TEXT PRIMARY KEY, ts INTEGER NOT NULL, v BLOB NOT NULL) "
                             "WITHOUT ROWID")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._created.add(table)

    @staticmethod
    def _convert(conn: sqlite3.Connection, table: str, columns: list[str]) -> None:
        """Rewrite a table of the one-column-per-feature layout as packed rows (inside the caller's
        transaction). Values are re-encoded by orjson in Python: SQLite's json_array prints REAL values
        with 15 digits, which would change them."""
        old = f"{table}__columns"
        conn.execute(f"ALTER TABLE {_q(table)} RENAME TO {_q(old)}")
        conn.execute(f"CREATE TABLE {_q(table)} (k TEXT PRIMARY KEY, ts INTEGER NOT NULL, v BLOB NOT NULL) "
                     "WITHOUT ROWID")
        features = ", ".join(_q(c) for c in columns[2:])
        cursor = conn.execute(f"SELECT k, ts{', ' if features else ''}{features} FROM {_q(old)}")
        while batch := cursor.fetchmany(_CONVERT_BATCH):
            conn.executemany(f"INSERT INTO {_q(table)} VALUES (?, ?, ?)",
                             [(r[0], r[1], orjson.dumps(r[1:], default=str)) for r in batch])
        conn.execute(f"DROP TABLE {_q(old)}")

    def write(self, table: str, n_features: int, keys: Sequence[str], event_us: Sequence[int],
              columns: Sequence[Sequence[Any]]) -> int:
        if len(columns) != n_features:
            raise InvalidInputError(field="columns", value=len(columns), expected=f"{n_features} feature columns")
        self._ensure(table)
        sql = (f"INSERT INTO {_q(table)} VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE SET ts = excluded.ts, "
               f"v = excluded.v WHERE excluded.ts >= {_q(table)}.ts")
        dumps = orjson.dumps
        # orjson writes NaN as null, like a missing value (SQLite stores a NaN REAL as NULL too)
        rows = [(k, ts, dumps(row, default=str)) for k, ts, row in
                zip(keys, event_us, zip(event_us, *columns, strict=True), strict=True)]
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(keys)

    def reader(self, table: str, n_features: int) -> Reader:
        self._ensure(table)
        # One statement for any number of keys: the keys travel as one JSON array, so the text never changes
        # (prepared once, cached by sqlite3) and there is no limit on bound variables. The LEFT JOIN keeps
        # absent keys (NULL) and duplicates; ORDER BY returns rows in the keys' order.
        sql = f"SELECT t.v FROM json_each(?) AS j LEFT JOIN {_q(table)} AS t ON t.k = j.value ORDER BY j.key"
        local, conn_of, url = self._local, self._conn, self.url
        dumps, empty, widths = orjson.dumps, null_row(n_features), [n_features + 1]

        def read(keys: Sequence[str]) -> list[Row | None]:
            conn = getattr(local, "conn", None) or conn_of()
            try:
                packed = conn.execute(sql, (dumps(keys),)).fetchall()
            except TypeError:  # orjson refuses a key that is not valid UTF-8 text
                raise InvalidInputError(field="entities", value=str(keys)[:60],
                                        expected="entity keys that are valid UTF-8 text") from None
            document = b"[" + b",".join([r[0] or empty for r in packed]) + b"]"
            return parse_rows(document, [len(keys)], widths, url)[0]

        return read

    def batch_reader(self, tables: Sequence[tuple[str, int]]) -> BatchReader:
        readers = [self.reader(t, n) for t, n in tables]
        if len(readers) == 1:
            only = readers[0]
            return lambda key_lists: [only(key_lists[0])]
        return lambda key_lists: [r(k) for r, k in zip(readers, key_lists, strict=True)]

    def drop(self, table: str) -> None:
        self._conn().execute(f"DROP TABLE IF EXISTS {_q(table)}")
        self._created.discard(table)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
