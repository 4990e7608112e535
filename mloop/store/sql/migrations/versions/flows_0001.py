"""Flows: flow runs, their tags, tasks, artifact index and schedule starts."""

import sqlalchemy as sa
from alembic import op

revision = "flows_0001"
down_revision = None
branch_labels = ("flows",)
depends_on = "tracking_0001"


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.run_id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "flow_runs",
        sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
        sa.Column("flow_name", sa.String(256), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("origin_run_id", sa.String(32)),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("ended", sa.BigInteger),
    )
    op.create_index("ix_flow_runs_flow_name_created", "flow_runs", ["flow_name", "created"])
    op.create_table(
        "flow_run_tags",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("flow_runs.run_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(250), primary_key=True),
    )
    op.create_index("ix_flow_run_tags_tag", "flow_run_tags", ["tag"])
    op.create_table(
        "flow_tasks",
        sa.Column("task_id", sa.String(32), _run_fk(), primary_key=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("flow_runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("step", sa.String(256), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("transition", sa.Text),
        sa.Column("cache_key", sa.String(64)),
        sa.Column("reused_from", sa.String(32)),
        sa.Column("error", sa.Text),
        sa.Column("log_dir", sa.Text),
        sa.Column("stdout_sha", sa.String(64)),
        sa.Column("stderr_sha", sa.String(64)),
        sa.Column("started", sa.BigInteger, nullable=False),
        sa.Column("ended", sa.BigInteger),
    )
    op.create_index("ix_flow_tasks_run_id", "flow_tasks", ["run_id"])
    op.create_index("ix_flow_tasks_cache_key", "flow_tasks", ["cache_key"])
    op.create_table(
        "flow_artifacts",
        sa.Column("task_id", sa.String(32), sa.ForeignKey("flow_tasks.task_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("name", sa.String(250), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("encoding", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "flow_schedule_starts",
        sa.Column("flow_name", sa.String(256), primary_key=True),
        sa.Column("due", sa.BigInteger, primary_key=True),
        sa.Column("cron", sa.String(256), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("started", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("flow_schedule_starts", "flow_artifacts", "flow_tasks", "flow_run_tags", "flow_runs"):
        op.drop_table(table)
