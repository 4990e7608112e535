"""Events: an outbox written with each change, and one delivery row per subscribed webhook."""

import sqlalchemy as sa
from alembic import op

revision = "events_0001"
down_revision = None
branch_labels = ("events",)
depends_on = "registry_0001"


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(32), nullable=False, unique=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event", sa.Integer, sa.ForeignKey("event_outbox.id", ondelete="CASCADE"), nullable=False),
        sa.Column("webhook_id", sa.Integer, sa.ForeignKey("registry_webhooks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt", sa.BigInteger, nullable=False),
        sa.Column("lease_until", sa.BigInteger),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("event", "webhook_id"),
    )
    op.create_index("ix_event_deliveries_state_next_attempt", "event_deliveries", ["state", "next_attempt"])
    op.create_index("ix_event_deliveries_webhook_id_state", "event_deliveries", ["webhook_id", "state"])


def downgrade() -> None:
    op.drop_table("event_deliveries")
    op.drop_table("event_outbox")
