"""What a caller may see: the projects where it holds at least viewer, as SQL conditions that listings add to
their own queries, so that a page of results is a page of visible results (a filter applied after paging would
return short pages and wrong totals).

A resource's project follows mloop.auth.projects: an experiment's or a registered model's ``project`` tag (else
``default``); a run, a flow run and a flow task belong with their experiment; a monitor, its alert rules, an
automation rule, an approval and an audit entry belong with their model. ``None`` for the visible projects means
everything (auth off, or a server-wide admin).

>>> me = Identity(name="ana", kind="user", is_admin=False, roles={"fraud": Role.VIEWER})
>>> sorted(visible_projects(me)), visible_projects(None)
(['fraud'], None)
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select, true

from mloop.auth.roles import DEFAULT_PROJECT, PROJECT_TAG, Identity, Role
from mloop.monitoring import _tables as monitoring
from mloop.registry import _tables as registry
from mloop.tracking import _tables as tracking

__all__ = ["Projects", "experiment_visible", "model_projects", "model_visible", "run_projects", "run_visible",
           "visible_alert_rules", "visible_experiment_ids", "visible_projects"]

Projects = frozenset[str] | None  # None: every project
_CHUNK = 500  # names per IN list: SQLite and PostgreSQL take far more, but a statement stays small


def visible_projects(identity: Identity | None) -> Projects:
    """The projects ``identity`` may read (None: all of them, for no identity or a server-wide admin)."""
    if identity is None or identity.is_admin:
        return None
    return frozenset(p for p, role in identity.roles.items() if role >= Role.VIEWER)


def _tag_in(tag_value: Any, projects: Projects) -> ColumnElement[bool]:
    if projects is None:
        return true()
    return func.coalesce(tag_value, DEFAULT_PROJECT).in_(sorted(projects))


def experiment_visible(experiment_id: Any, projects: Projects) -> ColumnElement[bool]:
    """SQL: the experiment whose id is the column or value ``experiment_id`` is in ``projects``."""
    tags = tracking.experiment_tags
    tag = select(tags.c.value).where(tags.c.experiment_id == experiment_id, tags.c.key == PROJECT_TAG)
    return _tag_in(tag.scalar_subquery(), projects)


def model_visible(name: Any, projects: Projects) -> ColumnElement[bool]:
    """SQL: the registered model named by the column or value ``name`` is in ``projects``."""
    tags = registry.model_tags
    tag = select(tags.c.value).where(tags.c.name == name, tags.c.key == PROJECT_TAG)
    return _tag_in(tag.scalar_subquery(), projects)


def run_visible(run_id: Any, projects: Projects) -> ColumnElement[bool]:
    """SQL: the run (or flow run, or flow task: they are runs) whose id is ``run_id`` is in ``projects``."""
    if projects is None:
        return true()
    runs = tracking.runs
    return run_id.in_(select(runs.c.run_id).where(experiment_visible(runs.c.experiment_id, projects)))


def visible_experiment_ids(conn: Connection, projects: Projects, requested: Collection[str] = ()) -> list[str]:
    """The ids of the visible experiments among ``requested`` (all visible ones when none is requested).

    Run searches are scoped by experiment ids, so restricting the ids restricts the runs inside the search's
    own SQL, paging included. A requested id that is not visible is left out as if it did not exist.
    """
    experiments = tracking.experiments
    query = select(experiments.c.experiment_id).where(experiment_visible(experiments.c.experiment_id, projects))
    wanted = [int(e) for e in requested if str(e).isascii() and str(e).isdigit() and len(str(e)) <= 9]
    if requested:
        query = query.where(experiments.c.experiment_id.in_(wanted))
    return [str(e) for e in conn.execute(query.order_by(experiments.c.experiment_id)).scalars()]


def model_projects(conn: Connection, names: Collection[str]) -> dict[str, str]:
    """The project of each registered model in ``names`` (an unknown name belongs to ``default``)."""
    tags, found = registry.model_tags, {}
    wanted = sorted(set(names))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        found.update(conn.execute(select(tags.c.name, tags.c.value)
                                  .where(tags.c.name.in_(chunk), tags.c.key == PROJECT_TAG)).tuples().all())
    return {name: found.get(name) or DEFAULT_PROJECT for name in wanted}


def run_projects(conn: Connection, run_ids: Collection[str]) -> dict[str, str]:
    """The project of each run in ``run_ids`` (an unknown run belongs to ``default``)."""
    runs, tags, found = tracking.runs, tracking.experiment_tags, {}
    wanted = sorted(set(run_ids))
    for start in range(0, len(wanted), _CHUNK):
        query = (select(runs.c.run_id, tags.c.value).join(tags, tags.c.experiment_id == runs.c.experiment_id)
                 .where(runs.c.run_id.in_(wanted[start:start + _CHUNK]), tags.c.key == PROJECT_TAG))
        found.update(conn.execute(query).tuples().all())
    return {run_id: found.get(run_id) or DEFAULT_PROJECT for run_id in wanted}


def visible_alert_rules(conn: Connection, projects: Projects) -> set[str] | None:
    """Names of the alert rules whose monitor watches a visible model (None: all)."""
    if projects is None:
        return None
    rules, monitors = monitoring.alert_rules, monitoring.monitors
    query = (select(rules.c.name).join(monitors, monitors.c.name == rules.c.monitor)
             .where(model_visible(monitors.c.model, projects)))
    return set(conn.execute(query).scalars())
