"""Feature store: immutable versioned definitions, watermarks, materialization jobs, feature statistics."""

import sqlalchemy as sa
from alembic import op

revision = "features_0001"
down_revision = None
branch_labels = ("features",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("project", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("creator", sa.String(256), nullable=False),
    )
    op.create_table(
        "feature_watermarks",
        sa.Column("project", sa.String(128), primary_key=True),
        sa.Column("view", sa.String(256), primary_key=True),
        sa.Column("watermark", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "feature_materializations",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("view", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("start_us", sa.BigInteger),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("batches_done", sa.Integer, nullable=False),
        sa.Column("rows_written", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_feature_materializations_project_view", "feature_materializations", ["project", "view"])
    op.create_table(
        "feature_stats",
        sa.Column("project", sa.String(128), primary_key=True),
        sa.Column("view", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("feature", sa.String(256), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("nulls", sa.BigInteger, nullable=False),
        sa.Column("min", sa.Text),
        sa.Column("max", sa.Text),
        sa.Column("mean", sa.Float),
        sa.Column("distinct", sa.BigInteger),
        sa.Column("computed", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("feature_stats", "feature_materializations", "feature_watermarks", "feature_definitions"):
        op.drop_table(table)
