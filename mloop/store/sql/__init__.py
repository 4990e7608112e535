"""The metadata database: SQLAlchemy engines, one MetaData, Alembic migrations."""

from mloop.store.sql.engine import Database, open_database
from mloop.store.sql.tables import metadata

__all__ = ["Database", "metadata", "open_database"]
