"""The migration fast path (skip Alembic when the database is at heads) must agree with Alembic, also later."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mloop.store.sql import migrate
from mloop.store.sql.engine import Database

_LATER = '''
import sqlalchemy as sa
from alembic import op

revision = "tracking_9999"
down_revision = "tracking_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("fast_path_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("fast_path_probe")
'''


def _recorded(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}


def test_file_heads_match_what_alembic_records(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    assert not migrate._at_heads(db)
    migrate.upgrade(db)
    assert migrate._file_heads() == _recorded(db)
    assert migrate._at_heads(db)


def test_a_migration_added_later_is_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(db)
    folder = tmp_path / "migrations"
    shutil.copytree(migrate._MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "tracking_9999.py").write_text(_LATER)
    monkeypatch.setattr(migrate, "_MIGRATIONS", folder)
    assert not migrate._at_heads(db)
    migrate.upgrade(db)
    assert "tracking_9999" in _recorded(db)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM fast_path_probe").scalar() == 0
    assert migrate._file_heads() == _recorded(db)
    assert migrate._at_heads(db)


def test_an_unparsable_migration_falls_back_to_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrate._MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "tracking_9999.py").write_text(_LATER.replace("down_revision = ", "down_revision: str = "))
    monkeypatch.setattr(migrate, "_MIGRATIONS", folder)
    assert migrate._file_heads() is None
