"""Monitoring: the series rolled up by the hour and by the day, filled from the windows already stored."""

import json

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0002"
down_revision = "monitoring_0001"
branch_labels = None
depends_on = None

# How each figure combined at this revision (frozen here: rollup.py may change later, this migration may not).
_SUMMED = ("rows", "requests", "labelled", "violations", "errors")
_WORST = ("latency_p50", "latency_p95", "latency_p99", "error_rate", "drift_statistic", "drift_effect", "drifted",
          "drift_share", "drift_prev_statistic", "drift_prev_effect", "drift_prev_drifted", "drift_prev_share")
_EVERY = {"1h": 3600, "1d": 86400}


def upgrade() -> None:
    op.create_table(
        "monitor_rollups",
        sa.Column("monitor", sa.String(128), primary_key=True),
        sa.Column("every", sa.String(8), primary_key=True),
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(64), primary_key=True),
        sa.Column("column", sa.String(256), primary_key=True),
        sa.Column("slice", sa.String(256), primary_key=True),
        sa.Column("value", sa.Float),
    )
    conn = op.get_bind()
    summed = ", ".join(f"'{m}'" for m in _SUMMED)
    worst = ", ".join(f"'{m}'" for m in _WORST)
    for name, spec in conn.execute(sa.text("SELECT name, spec FROM monitors")).all():
        window = int(json.loads(spec).get("window_seconds", 3600))
        for every, seconds in _EVERY.items():
            step = max(seconds, window) * 1000
            # integer division in SQLite and PostgreSQL alike: both columns are integers
            conn.execute(sa.text(
                'INSERT INTO monitor_rollups (monitor, every, metric, start, version, role, "column", slice, value) '
                f'SELECT monitor, :every, metric, (start / {step}) * {step}, version, role, "column", slice, '
                f"CASE WHEN metric IN ({summed}) THEN SUM(value) WHEN metric IN ({worst}) THEN MAX(value) "
                "ELSE AVG(value) END FROM monitor_series WHERE monitor = :name "
                f'GROUP BY metric, (start / {step}) * {step}, version, role, "column", slice'),
                {"every": every, "name": name})


def downgrade() -> None:
    op.drop_table("monitor_rollups")
