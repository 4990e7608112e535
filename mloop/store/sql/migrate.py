"""Bring a database to the current schema, safely when many processes start at once.

Each capability keeps its migrations on its own Alembic branch, so upgrading
means reaching every head. A cross-process lock (a file lock next to a SQLite
file, an advisory lock on PostgreSQL) makes concurrent first starts wait for
one another instead of racing to create the same tables.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, text

from mloop.store.sql.engine import Database

_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = zlib.crc32(b"mloop-migrations")


def _file_heads() -> set[str] | None:
    """Heads read from the migration files without importing Alembic (None when a file is not simple)."""
    revisions, downs = set(), set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text()
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M)
        down = re.search(r'^down_revision\s*=\s*(None|"([^"]+)")\s*$', text, re.M)
        if rev is None or down is None:
            return None
        revisions.add(rev.group(1))
        if down.group(2):
            downs.add(down.group(2))
        depends = re.search(r'^depends_on\s*=\s*(.+?)\s*$', text, re.M)
        if depends and depends.group(1) != "None":
            single = re.fullmatch(r'"([^"]+)"', depends.group(1))
            if single is None:  # a tuple or an expression: let Alembic decide
                return None
            downs.add(single.group(1))  # Alembic records only the dependant once both are applied
    return revisions - downs


def _at_heads(db: Database) -> bool:
    """True when the database is already current: most processes start here and skip Alembic (~0.5 s)."""
    heads = _file_heads()
    if not heads:
        return False
    try:
        with db.engine.connect() as conn:
            current = {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    except Exception:  # no table yet, or no database: the full path below handles it
        return False
    return current == heads


def upgrade(db: Database) -> None:
    """Run every pending migration of every capability branch."""
    if _at_heads(db):
        return
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with _migration_lock(db) as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
        if current == heads:
            return
        config.attributes["connection"] = conn
        command.upgrade(config, "heads")
        if conn.in_transaction():
            conn.commit()


@contextmanager
def _migration_lock(db: Database) -> Iterator[Connection]:
    if db.is_sqlite:
        from filelock import FileLock

        path = db.engine.url.database or "mloop.db"
        with FileLock(path + ".migrate.lock", timeout=120), db.engine.connect() as conn:
            yield conn
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        conn.commit()
        try:
            yield conn
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            conn.commit()
