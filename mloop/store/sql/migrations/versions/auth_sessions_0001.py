"""Browser sessions of the web UI: a cookie's secret kept as its sha256, tied to the token that opened it.

A branch of its own (not auth_0002) so that other changes to the auth tables never race it for a revision id.
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_sessions_0001"
down_revision = None
branch_labels = ("auth_sessions",)
depends_on = "auth_0001"


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("auth_tokens.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
    )
    op.create_index("auth_sessions_expires", "auth_sessions", ["expires"])


def downgrade() -> None:
    op.drop_index("auth_sessions_expires", "auth_sessions")
    op.drop_table("auth_sessions")
