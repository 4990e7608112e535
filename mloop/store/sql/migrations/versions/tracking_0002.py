"""Tracking: the keys of metric batches already applied, so that a retried batch is stored once."""

import sqlalchemy as sa
from alembic import op

revision = "tracking_0002"
down_revision = "tracking_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("applied", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_metric_batches_applied", "metric_batches", ["applied"])


def downgrade() -> None:
    op.drop_table("metric_batches")
