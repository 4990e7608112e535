"""Tracking's purge must keep every run a registered version came from."""

from __future__ import annotations

from sqlalchemy import Connection, select

from mloop.registry import _tables as t
from mloop.tracking._retention import RUN_GUARDS


def registered_runs(conn: Connection) -> set[str]:
    """Run ids that at least one model version points to."""
    query = select(t.model_versions.c.run_id).where(t.model_versions.c.run_id.is_not(None)).distinct()
    return {r.run_id for r in conn.execute(query)}


def install() -> None:
    """Add the guard once (importing mloop.registry calls this)."""
    if registered_runs not in RUN_GUARDS:
        RUN_GUARDS.append(registered_runs)
