"""Which project a resource belongs to: the value of its ``project`` tag, else ``default``.

Experiments carry the tag (their runs belong to their experiment's project), registered models carry it (their
versions, aliases and approval requests belong with them). Anything else (feature projects, monitors, flows,
environments) belongs to ``default`` for now.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from mloop.auth.roles import DEFAULT_PROJECT, PROJECT_TAG
from mloop.registry import _tables as registry
from mloop.tracking import _tables as tracking

__all__ = ["project_of"]


def project_of(conn: Connection, kind: str, key: str) -> str:
    """The project of the resource ``kind`` ('experiment', 'run', 'model', 'approval') named ``key``.

    An unknown resource belongs to ``default``: the request will find nothing there anyway.
    """
    if kind == "run":
        experiment = conn.execute(select(tracking.runs.c.experiment_id)
                                  .where(tracking.runs.c.run_id == key)).scalar()
        return DEFAULT_PROJECT if experiment is None else project_of(conn, "experiment", str(experiment))
    if kind == "approval":
        if not key.isdigit() or len(key) > 10:
            return DEFAULT_PROJECT
        name = conn.execute(select(registry.promotion_requests.c.name)
                            .where(registry.promotion_requests.c.id == int(key))).scalar()
        return DEFAULT_PROJECT if name is None else project_of(conn, "model", name)
    if kind == "experiment":
        if not key.isdigit() or len(key) > 10:
            return DEFAULT_PROJECT
        tags = tracking.experiment_tags
        value = conn.execute(select(tags.c.value).where(tags.c.experiment_id == int(key),
                                                        tags.c.key == PROJECT_TAG)).scalar()
    else:
        tags = registry.model_tags
        value = conn.execute(select(tags.c.value).where(tags.c.name == key, tags.c.key == PROJECT_TAG)).scalar()
    return value or DEFAULT_PROJECT
