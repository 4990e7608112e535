"""The one SQLAlchemy MetaData every capability defines its tables on.

Capabilities declare their tables in their own ``_tables.py`` on this object,
and their migrations in ``migrations/versions`` on a branch of their own.
"""

from sqlalchemy import MetaData

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
