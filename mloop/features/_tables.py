"""Feature store tables (schema only). Times are epoch milliseconds (UTC); watermarks are epoch microseconds."""

from sqlalchemy import BigInteger, Column, Float, Integer, String, Table, Text

from mloop.store.sql.tables import metadata

feature_definitions = Table(
    "feature_definitions", metadata,
    Column("project", String(128), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("spec", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("creator", String(256), nullable=False),
)

feature_watermarks = Table(
    "feature_watermarks", metadata,
    Column("project", String(128), primary_key=True),
    Column("view", String(256), primary_key=True),
    Column("watermark", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
)

feature_materializations = Table(
    "feature_materializations", metadata,
    Column("job_id", String(64), primary_key=True),
    Column("project", String(128), nullable=False),
    Column("view", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("start_us", BigInteger),
    Column("end_us", BigInteger, nullable=False),
    Column("batches_done", Integer, nullable=False),
    Column("rows_written", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
)

feature_stats = Table(
    "feature_stats", metadata,
    Column("project", String(128), primary_key=True),
    Column("view", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("feature", String(256), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("nulls", BigInteger, nullable=False),
    Column("min", Text),
    Column("max", Text),
    Column("mean", Float),
    Column("distinct", BigInteger),
    Column("computed", BigInteger, nullable=False),
)
