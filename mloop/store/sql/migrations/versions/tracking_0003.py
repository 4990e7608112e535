"""Tracking: on PostgreSQL, index param values by hash, since a btree row holds at most 2,704 bytes.

A param may hold up to 6,000 characters; a long value that does not compress made the insert fail
("index row size exceeds btree maximum"). Filters compare param values for equality, which a hash
index serves at any length; the key keeps a btree of its own. SQLite has no such limit and keeps
its (key, value) index.
"""

from alembic import op

revision = "tracking_0003"
down_revision = "tracking_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_params_key_value", table_name="params")
    op.create_index("ix_params_key", "params", ["key"])
    op.create_index("ix_params_value_hash", "params", ["value"], postgresql_using="hash")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_params_value_hash", table_name="params")
    op.drop_index("ix_params_key", table_name="params")
    op.create_index("ix_params_key_value", "params", ["key", "value"])
