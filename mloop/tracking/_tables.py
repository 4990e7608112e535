"""Tracking tables (schema only; behaviour lives in _sql.py)."""

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from mloop.store.sql.tables import metadata

experiments = Table(
    "experiments", metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("lifecycle_stage", String(16), nullable=False, default="active"),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    Column("deleted_time", BigInteger),
)

experiment_tags = Table(
    "experiment_tags", metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("user", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("heartbeat", BigInteger, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False, default="active"),
    Column("deleted_time", BigInteger),
    Column("parent_run_id", String(32)),
    Column("artifact_uri", Text, nullable=False),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_status", "status"),
)

params = Table(
    "params", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Column("vtype", String(8), nullable=False),
    Column("num", Float),
    # on PostgreSQL tracking_0003 replaces this with a btree on key and a hash on value (a btree row is bounded)
    Index("ix_params_key_value", "key", "value"),
    Index("ix_params_key_num", "key", "num"),
)

tags = Table(
    "tags", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# NaN is stored as NULL (SQLite cannot keep NaN); value is otherwise never NULL.
metrics = Table(
    "metrics", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float),
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = Table(
    "artifacts", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created", BigInteger, nullable=False),
)

datasets = Table(
    "datasets", metadata,
    Column("dataset_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("rows", BigInteger),
    Column("schema", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
)

run_inputs = Table(
    "run_inputs", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", String(32), ForeignKey("datasets.dataset_id"), primary_key=True),
    Column("context", String(64), primary_key=True),
)

# Keys of metric batches already stored (written in the batch's own transaction): a retry is a no-op.
metric_batches = Table(
    "metric_batches", metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("applied", BigInteger, nullable=False),
    Index("ix_metric_batches_applied", "applied"),
)
