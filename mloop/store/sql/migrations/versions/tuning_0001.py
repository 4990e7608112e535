"""Tuning: the journal of Optuna operations that holds every study (no Optuna tables, no second alembic_version)."""

import sqlalchemy as sa
from alembic import op

revision = "tuning_0001"
down_revision = None
branch_labels = ("tuning",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tuning_journal",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("entry", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tuning_journal")
