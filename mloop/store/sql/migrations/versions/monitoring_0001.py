"""Monitoring: monitors with their watermarks, windowed series, window profiles, alert rules, states, history,
silences."""

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0001"
down_revision = None
branch_labels = ("monitoring",)
depends_on = None

_WINDOW_KEY = ("monitor", "start", "version", "role")


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("watermark", sa.BigInteger, nullable=False),
        sa.Column("label_watermark", sa.String(128), nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.BigInteger),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "monitor_series",
        sa.Column("monitor", sa.String(128), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(64), primary_key=True),
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("column", sa.String(256), primary_key=True),
        sa.Column("slice", sa.String(256), primary_key=True),
        sa.Column("value", sa.Float),
    )
    op.create_index("ix_monitor_series_monitor_metric_start", "monitor_series", ["monitor", "metric", "start"])
    op.create_table(
        "monitor_profiles",
        sa.Column("monitor", sa.String(128), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(64), primary_key=True),
        sa.Column("profile", sa.Text, nullable=False),
    )
    op.create_table(
        "monitor_alert_rules",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("monitor", sa.String(128), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "monitor_alert_states",
        sa.Column("rule", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("streak", sa.BigInteger, nullable=False),
        sa.Column("last_window", sa.BigInteger, nullable=False),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float),
    )
    op.create_table(
        "monitor_alert_history",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("window", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("silenced", sa.Integer, nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_monitor_alert_history_rule_time", "monitor_alert_history", ["rule", "time"])
    op.create_table(
        "monitor_silences",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("until", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("monitor_silences", "monitor_alert_history", "monitor_alert_states", "monitor_alert_rules",
                  "monitor_profiles",
                  "monitor_series", "monitors"):
        op.drop_table(table)
