"""Bring a database to the current schema, safely when many processes start at once.

Each capability keeps its migrations on its own Alembic branch, so upgrading
means reaching every head. A cross-process lock (a file lock next to a SQLite
file, an advisory lock on PostgreSQL) makes concurrent first starts wait for
one another instead of racing to create the same tables.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, text

from mloop.store.sql.engine import Database

_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = zlib.crc32(b"mloop-migrations")


def upgrade(db: Database) -> None:
    """Run every pending migration of every capability branch."""
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
