"""Flow tables (schema only; behaviour lives in _sql.py). A flow run and each task are also tracking runs."""

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from mloop.store.sql.tables import metadata


def _run_fk() -> ForeignKey:
    return ForeignKey("runs.run_id", ondelete="CASCADE")


flow_runs = Table(
    "flow_runs", metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("flow_name", String(256), nullable=False),
    Column("file", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("origin_run_id", String(32)),
    Column("executor", String(32), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("ended", BigInteger),
    Index("ix_flow_runs_flow_name_created", "flow_name", "created"),
)

flow_run_tags = Table(
    "flow_run_tags", metadata,
    Column("run_id", String(32), ForeignKey("flow_runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(250), primary_key=True),
    Index("ix_flow_run_tags_tag", "tag"),
)

flow_tasks = Table(
    "flow_tasks", metadata,
    Column("task_id", String(32), _run_fk(), primary_key=True),
    Column("run_id", String(32), ForeignKey("flow_runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("step", String(256), nullable=False),
    Column("path", String(512), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("transition", Text),
    Column("cache_key", String(64)),
    Column("reused_from", String(32)),
    Column("error", Text),
    Column("log_dir", Text),
    Column("stdout_sha", String(64)),
    Column("stderr_sha", String(64)),
    Column("started", BigInteger, nullable=False),
    Column("ended", BigInteger),
    Index("ix_flow_tasks_run_id", "run_id"),
    Index("ix_flow_tasks_cache_key", "cache_key"),
)

flow_artifacts = Table(
    "flow_artifacts", metadata,
    Column("task_id", String(32), ForeignKey("flow_tasks.task_id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(250), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("encoding", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
)

flow_schedule_starts = Table(
    "flow_schedule_starts", metadata,
    Column("flow_name", String(256), primary_key=True),
    Column("due", BigInteger, primary_key=True),
    Column("cron", String(256), nullable=False),
    Column("file", Text, nullable=False),
    Column("run_id", String(32)),
    Column("started", BigInteger, nullable=False),
)
