"""SQLAlchemy engines from a URL: SQLite in WAL mode, or PostgreSQL.

Writes go through ``Database.write()``, which on SQLite starts the transaction
with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy timeout
instead of failing with "database is locked" at commit time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool

from mloop._util.names import refuse_nul_parameters
from mloop._util.redact import redact
from mloop.errors import BackendError, InvalidInputError

__all__ = ["Database", "open_database"]

_SQLITE_BUSY_MS = 60_000
_databases: dict[str, Database] = {}
_lock = threading.Lock()


class Database:
    """One metadata database: an engine, its dialect, and the schema kept current."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self.dialect = self.engine.dialect.name
        event.listen(self.engine, "before_cursor_execute", refuse_nul_parameters)  # SQLite and PostgreSQL alike
        self._writer = self.engine.execution_options(mloop_write=True)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (a short transaction, rolled back at the end)."""
        with _explained(self.url), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on success; retried connection errors surface as BackendError."""
        with _explained(self.url), self._writer.begin() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str) -> Database:
    """The process-wide Database for ``url``, migrated to the current schema on first use."""
    with _lock:
        db = _databases.get(url)
        if db is None or db._pid != os.getpid():
            db = Database(url)
            db._pid = os.getpid()  # type: ignore[attr-defined]
            from mloop.store.sql.migrate import upgrade

            with _explained(url):
                upgrade(db)
            _databases[url] = db
        return db


# What SQLite says about a file that is damaged, truncated or not a database at all: the user's file, not our bug.
_DAMAGED_SQLITE = ("file is not a database", "database disk image is malformed", "unable to open database file",
                   "disk i/o error", "attempt to write a readonly database", "database or disk is full")


@contextmanager
def _explained(url: str) -> Iterator[None]:
    try:
        yield
    except DatabaseError as exc:
        error = database_error(exc, url)
        if error is exc:
            raise
        raise error from exc


def database_error(exc: DatabaseError, url: str) -> Exception:
    """The error to raise for ``exc``: a BackendError that says what to do when the database itself (a damaged
    file, a refused login, an unreachable server) is at fault; ``exc`` unchanged otherwise (a constraint is ours)."""
    if isinstance(exc, IntegrityError):
        return exc
    reason = " ".join(redact(str(exc.orig)).split()).rstrip(".") or type(exc.orig).__name__
    where = _safe(url)
    if where.startswith("sqlite") and any(s in reason.lower() for s in _DAMAGED_SQLITE):
        return BackendError(
            f"The SQLite database {make_url(url).database} cannot be used: {reason}. The file is damaged (for "
            "example truncated by a full disk or a copy made while it was written), not an mloop database, or not "
            "writable: restore it from a backup, or point MLOOP_DB_URL (--db-url) at another file.", field="db_url")
    if isinstance(exc, OperationalError):
        return BackendError(
            f"The metadata database at {where} failed: {reason}. Check that the server runs and that the host, "
            "port, user, password and database name in MLOOP_DB_URL (--db-url) are right.", field="db_url")
    return exc


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInputError(
            field="db_url", value=redact(url), expected="a database URL like sqlite:///path/mloop.db "
            "or postgresql+psycopg://user@host:5432/db",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, parsed.database or "")
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
        from mloop._util.optional import require

        require("psycopg", extra="postgres")
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    raise InvalidInputError(field="db_url", value=redact(url), expected="a sqlite:// or postgresql:// URL")


def _sqlite_engine(url: str, path: str) -> Engine:
    if not path or path == ":memory:":
        raise InvalidInputError(
            field="db_url", value=redact(url), expected="a SQLite file path (several threads and processes share it)"
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Pooled: opening a connection costs its PRAGMAs, and closing the last one checkpoints and removes the
    # WAL file (milliseconds each), which made every small write pay both. A forked child drops the
    # parent's connections unused (see _forget_connections_after_fork). Few stay idle per database, so a
    # process that opens many databases (a test session) keeps few files open.
    engine = create_engine(url, poolclass=QueuePool, pool_size=2, max_overflow=62, pool_timeout=_SQLITE_BUSY_MS / 1000,
                           connect_args={"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        _retry_locked(lambda: cur.execute("PRAGMA journal_mode=WAL"))
        cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA case_sensitive_like=ON")  # LIKE is case-sensitive, as on PostgreSQL
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("mloop_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _forget_connections_after_fork() -> None:
    """In a forked child, every engine starts a pool of its own: a connection shared with the parent
    process would corrupt the SQLite file or the PostgreSQL session (the parent keeps using them)."""
    for db in list(_databases.values()):
        db.engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_connections_after_fork)


def _retry_locked(fn: Any, attempts: int = 50) -> None:
    import sqlite3

    for i in range(attempts):
        try:
            fn()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(0.05)


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"
