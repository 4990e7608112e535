"""Tracking: a string param that spells a number gets that number too, as new ones do.

A filter such as ``params.p0 = 3`` compares the numeric column; a param logged as the string "3" (the
way MLflow users log every param) had none, so the filter silently missed it.
"""

import sqlalchemy as sa
from alembic import op

from mloop.tracking._values import numeric_text

revision = "tracking_0004"
down_revision = "tracking_0003"
branch_labels = None
depends_on = None

_params = sa.table("params", sa.column("run_id"), sa.column("key"), sa.column("value"), sa.column("vtype"),
                   sa.column("num"))


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_params.c.run_id, _params.c.key, _params.c.value)
                        .where(_params.c.vtype == "str", _params.c.num.is_(None)))
    updates = [{"r": r.run_id, "k": r.key, "n": n} for r in rows if (n := numeric_text(r.value)) is not None]
    if updates:
        conn.execute(sa.update(_params).where(_params.c.run_id == sa.bindparam("r"), _params.c.key == sa.bindparam("k"))
                     .values(num=sa.bindparam("n")), updates)


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(sa.update(_params).where(_params.c.vtype == "str").values(num=None))
