"""Optuna studies kept in mloop's metadata database, as a journal of operations.

Optuna's ``JournalStorage`` replays a log of operations (create study, start trial, set a value...) and
needs only two things from its backend: append entries, and read the entries from position n on. Here the
entries are rows of ``tuning_journal`` in the same SQLite or PostgreSQL database mloop uses, so a study
survives a crash and several processes share it, without Optuna's own tables (whose ``alembic_version``
would collide with mloop's migrations).

Positions must be dense and must become visible in order, or a reader that has seen entry 7 would never
see an entry 6 committed after it: appends are serialized (SQLite's ``BEGIN IMMEDIATE``; an exclusive
table lock on PostgreSQL, which still lets readers read), and each takes the next positions in its
transaction.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, insert, select, text

from mloop._util.optional import require
from mloop.store.sql.engine import Database
from mloop.tuning._tables import tuning_journal as journal_t

_BATCH = 5000  # entries read per query, so a long journal never loads at once


def journal_backend(db: Database) -> Any:
    """An Optuna journal backend over ``db`` (an instance of ``BaseJournalBackend``)."""
    base = require("optuna.storages.journal", extra="tune").BaseJournalBackend

    class SqlJournalBackend(base):  # type: ignore[misc, valid-type]
        def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
            return read_entries(db, log_number_from)

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            append_entries(db, logs)

    return SqlJournalBackend()


def open_storage(db: Database) -> Any:
    """The Optuna storage whose studies live in ``db``'s journal, one per database and process: it replays the
    journal once, then reads only the entries appended since (by any process) before each operation."""
    key = (db.url, os.getpid())
    with _storages_lock:
        storage = _storages.get(key)
        if storage is None:
            optuna = require("optuna", extra="tune")
            storage = _storages[key] = optuna.storages.JournalStorage(journal_backend(db))
        return storage


_storages: dict[tuple[str, int], Any] = {}
_storages_lock = threading.Lock()


def read_entries(db: Database, start: int) -> Iterator[dict[str, Any]]:
    """Every journal entry at position ``start`` or later, in order."""
    while True:
        # one statement, no transaction: Optuna reads the journal before nearly every operation
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows = conn.execute(select(journal_t.c.seq, journal_t.c.entry).where(journal_t.c.seq >= start)
                                .order_by(journal_t.c.seq).limit(_BATCH)).all()
        for row in rows:
            yield json.loads(row.entry)
        if len(rows) < _BATCH:
            return
        start = rows[-1].seq + 1


def append_entries(db: Database, entries: list[dict[str, Any]]) -> None:
    """Append ``entries`` at the next positions, atomically and in the order appends commit."""
    if not entries:
        return
    values = [{"ord": i, "entry": json.dumps(entry, separators=(",", ":"))} for i, entry in enumerate(entries)]
    with db.write() as conn:
        if not db.is_sqlite:  # taken before the statement below reads the last position
            conn.execute(text("LOCK TABLE tuning_journal IN EXCLUSIVE MODE"))
        if len(values) == 1:
            conn.execute(_APPEND_ONE, {"entry": values[0]["entry"]})
            return
        first = conn.execute(select(func.coalesce(func.max(journal_t.c.seq) + 1, 0))).scalar_one()
        conn.execute(insert(journal_t), [{"seq": first + v["ord"], "entry": v["entry"]} for v in values])


_APPEND_ONE = text("INSERT INTO tuning_journal (seq, entry) "
                   "SELECT COALESCE(MAX(seq) + 1, 0), :entry FROM tuning_journal")


@contextmanager
def study_lock(db: Database, study: str) -> Iterator[None]:
    """Hold the cross-process lock of ``study``: a worker counts the study's trials and starts one under it,
    so that workers sharing a study never start more trials than it asks for."""
    key = zlib.crc32(f"mloop-tune:{study}".encode())
    if db.is_sqlite:
        from filelock import FileLock

        path = db.engine.url.database or "mloop.db"
        with FileLock(f"{path}.tune-{key:08x}.lock", timeout=300):
            yield
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


def worker_id() -> str:
    """This process as a trial owner: ``host:pid``."""
    return f"{os.uname().nodename}:{os.getpid()}"


def worker_is_dead(owner: str) -> bool:
    """True when ``owner`` (``host:pid``) is a process of this machine that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != os.uname().nodename or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    """A killed child its parent has not waited for yet still answers kill(pid, 0)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
