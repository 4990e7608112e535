"""Automation: versioned rules, trigger events (deduplicated), firings and their actions."""

import sqlalchemy as sa
from alembic import op

revision = "automation_0001"
down_revision = None
branch_labels = ("automation",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automation_rules",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("paused", sa.Integer, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "automation_rule_versions",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "automation_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dedupe_key", sa.String(512), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_automation_events_rule_created", "automation_events", ["rule", "created"])
    op.create_table(
        "automation_firings",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("rule_version", sa.Integer, nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.BigInteger),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("rule", "event"),
    )
    op.create_index("ix_automation_firings_model_created", "automation_firings", ["model", "created"])
    op.create_table(
        "automation_actions",
        sa.Column("firing", sa.String(32), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(64)),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("started", sa.BigInteger),
        sa.Column("finished", sa.BigInteger),
    )


def downgrade() -> None:
    for table in ("automation_actions", "automation_firings", "automation_events", "automation_rule_versions",
                  "automation_rules"):
        op.drop_table(table)
