"""Tracking's purge must keep every run a registered version's lineage reads.

That is the version's own run, the runs it is nested in (``parent_run_id``, followed up to the top) and, when
one of those is a flow run, every run nested in that flow run: its tasks (their inputs are the flow's datasets,
their artifacts and logs what ``mloop flow show`` reads) and the runs started inside them.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from mloop.registry import _tables as t
from mloop.registry.lineage import FLOW_TAG, MAX_DEPTH
from mloop.tracking import _tables as tt
from mloop.tracking._retention import RUN_GUARDS, chunks


def registered_runs(conn: Connection) -> set[str]:
    """Run ids that a registered version's lineage needs: its run, that run's ancestors and, inside a flow,
    every run of that flow run.

    >>> from mloop.tracking._retention import RUN_GUARDS
    >>> registered_runs in RUN_GUARDS
    True
    """
    query = select(t.model_versions.c.run_id).where(t.model_versions.c.run_id.is_not(None)).distinct()
    sources = {r.run_id for r in conn.execute(query)}
    protected = sources | _ancestors(conn, sources)
    flow_runs: set[str] = set()
    for chunk in chunks(protected):
        flow_runs |= {r.run_id for r in conn.execute(
            select(tt.tags.c.run_id).where(tt.tags.c.key == FLOW_TAG, tt.tags.c.run_id.in_(chunk)))}
    return protected | _descendants(conn, flow_runs)


def _ancestors(conn: Connection, run_ids: set[str]) -> set[str]:
    """The runs ``run_ids`` are nested in, at any depth up to MAX_DEPTH (a cycle ends the walk)."""
    found: set[str] = set()
    level = run_ids
    for _ in range(MAX_DEPTH):
        parents: set[str] = set()
        for chunk in chunks(level):
            parents |= {r.parent_run_id for r in conn.execute(select(tt.runs.c.parent_run_id).where(
                tt.runs.c.run_id.in_(chunk), tt.runs.c.parent_run_id.is_not(None)))}
        level = parents - found - run_ids
        if not level:
            break
        found |= level
    return found


def _descendants(conn: Connection, run_ids: set[str]) -> set[str]:
    """``run_ids`` and the runs nested in them, at any depth up to MAX_DEPTH."""
    found = set(run_ids)
    level = run_ids
    for _ in range(MAX_DEPTH):
        children: set[str] = set()
        for chunk in chunks(level):
            children |= {r.run_id for r in conn.execute(
                select(tt.runs.c.run_id).where(tt.runs.c.parent_run_id.in_(chunk)))}
        level = children - found
        if not level:
            break
        found |= level
    return found


def install() -> None:
    """Add the guard once (importing mloop.registry calls this)."""
    if registered_runs not in RUN_GUARDS:
        RUN_GUARDS.append(registered_runs)
