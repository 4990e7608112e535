"""The SQLite online store: one WITHOUT ROWID table per feature-view version, read with one prepared
statement per table on a per-thread ``sqlite3`` connection (no SQLAlchemy on the hot path).

An absent key reads as a row of NULLs (event time None), in the order the keys were asked."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from mloop.features.online.base import BatchReader, Reader, Row


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteOnlineStore:
    """Latest values in a local SQLite file (WAL), shared by threads and processes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._created: set[tuple[str, int]] = set()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False,
                                   cached_statements=256)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _ensure(self, table: str, n_features: int) -> None:
        if (table, n_features) in self._created:
            return
        cols = ", ".join(f"f{i}" for i in range(n_features))
        self._conn().execute(f"CREATE TABLE IF NOT EXISTS {_q(table)} (k TEXT PRIMARY KEY, ts INTEGER NOT NULL"
                             f"{', ' if cols else ''}{cols}) WITHOUT ROWID")
        self._created.add((table, n_features))

    def write(self, table: str, n_features: int, keys: Sequence[str], event_us: Sequence[int],
              columns: Sequence[Sequence[Any]]) -> int:
        self._ensure(table, n_features)
        names = [f"f{i}" for i in range(n_features)]
        updates = ", ".join(f"{n}=excluded.{n}" for n in ["ts", *names])
        sql = (f"INSERT INTO {_q(table)} VALUES ({', '.join('?' * (n_features + 2))}) ON CONFLICT(k) DO UPDATE "
               f"SET {updates} WHERE excluded.ts >= {_q(table)}.ts")
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(sql, zip(keys, event_us, *columns, strict=True))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(keys)

    def reader(self, table: str, n_features: int) -> Reader:
        self._ensure(table, n_features)
        cols = ", ".join(["t.ts", *(f"t.f{i}" for i in range(n_features))])
        # One statement for any number of keys: the keys travel as one JSON array, so the text never changes
        # (prepared once, cached by sqlite3) and there is no limit on bound variables. The LEFT JOIN keeps
        # absent keys (a row of NULLs) and duplicates; ORDER BY returns rows in the keys' order.
        sql = (f"SELECT {cols} FROM json_each(?) AS j LEFT JOIN {_q(table)} AS t ON t.k = j.value "
               f"ORDER BY j.key")
        local = self._local
        conn_of = self._conn
        dumps = orjson.dumps

        def read(keys: Sequence[str]) -> list[Row | None]:
            conn = getattr(local, "conn", None) or conn_of()
            return conn.execute(sql, (dumps(keys),)).fetchall()

        return read

    def batch_reader(self, tables: Sequence[tuple[str, int]]) -> BatchReader:
        readers = [self.reader(t, n) for t, n in tables]
        if len(readers) == 1:
            only = readers[0]
            return lambda key_lists: [only(key_lists[0])]
        return lambda key_lists: [r(k) for r, k in zip(readers, key_lists, strict=True)]

    def drop(self, table: str) -> None:
        self._conn().execute(f"DROP TABLE IF EXISTS {_q(table)}")
        self._created = {c for c in self._created if c[0] != table}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
