"""Which project a resource belongs to: the value of its ``project`` tag, else ``default``.

Experiments carry the tag (their runs, flow runs and flow tasks belong to their experiment's project), registered
models carry it (their versions, aliases, approval requests, monitors, alert rules and automation rules belong
with them). A feature project is a project itself: its name is the project. Environments are shared by every
project and belong to ``default`` (a deployment is checked against its model's project).
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, select

from mloop.auth.roles import DEFAULT_PROJECT, PROJECT_TAG
from mloop.automation import _tables as automation
from mloop.monitoring import _tables as monitoring
from mloop.registry import _tables as registry
from mloop.tracking import _tables as tracking

__all__ = ["project_of"]


def project_of(conn: Connection, kind: str, key: str) -> str:
    """The project of the resource ``kind`` ('experiment', 'experiment_name', 'run', 'model', 'approval',
    'monitor', 'alert_rule', 'automation_rule') named ``key``.

    An unknown resource belongs to ``default``: the request will find nothing there anyway.
    """
    owner = _OWNERS.get(kind)
    if owner is not None:
        parent_kind, parent = owner(conn, key)
        return DEFAULT_PROJECT if parent is None else project_of(conn, parent_kind, parent)
    if kind == "experiment":
        if not _small_int(key):
            return DEFAULT_PROJECT
        tags = tracking.experiment_tags
        value = conn.execute(select(tags.c.value).where(tags.c.experiment_id == int(key),
                                                        tags.c.key == PROJECT_TAG)).scalar()
    else:
        tags = registry.model_tags
        value = conn.execute(select(tags.c.value).where(tags.c.name == key, tags.c.key == PROJECT_TAG)).scalar()
    return value or DEFAULT_PROJECT


def _small_int(key: str) -> bool:
    return key.isascii() and key.isdigit() and len(key) <= 9


def _run_owner(conn: Connection, key: str) -> tuple[str, str | None]:
    experiment = conn.execute(select(tracking.runs.c.experiment_id).where(tracking.runs.c.run_id == key)).scalar()
    return "experiment", None if experiment is None else str(experiment)


def _experiment_name_owner(conn: Connection, key: str) -> tuple[str, str | None]:
    experiments = tracking.experiments
    found = conn.execute(select(experiments.c.experiment_id).where(experiments.c.name == key)).scalar()
    return "experiment", None if found is None else str(found)


def _approval_owner(conn: Connection, key: str) -> tuple[str, str | None]:
    if not _small_int(key):
        return "model", None
    requests = registry.promotion_requests
    return "model", conn.execute(select(requests.c.name).where(requests.c.id == int(key))).scalar()


def _monitor_owner(conn: Connection, key: str) -> tuple[str, str | None]:
    monitors = monitoring.monitors
    return "model", conn.execute(select(monitors.c.model).where(monitors.c.name == key)).scalar()


def _alert_rule_owner(conn: Connection, key: str) -> tuple[str, str | None]:
    rules = monitoring.alert_rules
    return "monitor", conn.execute(select(rules.c.monitor).where(rules.c.name == key)).scalar()


def _automation_rule_owner(conn: Connection, key: str) -> tuple[str, str | None]:
    spec = conn.execute(select(automation.rules.c.spec).where(automation.rules.c.name == key)).scalar()
    try:
        model = json.loads(spec)["given"].get("model") if spec else None
    except (ValueError, KeyError, TypeError, AttributeError):
        model = None
    return "model", model if isinstance(model, str) else None


# a resource that has no project of its own: the kind and key of what it belongs to
_OWNERS = {"run": _run_owner, "experiment_name": _experiment_name_owner, "approval": _approval_owner,
           "monitor": _monitor_owner, "alert_rule": _alert_rule_owner, "automation_rule": _automation_rule_owner}
