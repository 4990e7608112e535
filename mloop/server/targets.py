"""Which resources a request touches, so that its project can be found: from the path, and for the few routes
that name their target only in the JSON body, from the body.

A target is (kind, key): kind 'model', 'approval', 'experiment', 'run' (looked up: see mloop.auth.projects) or
'project' (the key is the project itself, for a resource created with a ``project`` tag).

>>> path_targets("/api/runs/abc/end")
[('run', 'abc')]
>>> body_targets("POST", "/api/experiments", {"name": "eta", "tags": {"project": "fraud"}})
[('project', 'fraud')]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from mloop.auth.roles import DEFAULT_PROJECT, PROJECT_TAG
from mloop.errors import InvalidInputError

__all__ = ["body_targets", "path_targets", "reads_body"]

Target = tuple[str, str]
_MAX_RUNS = 1_000  # distinct runs one metric batch may touch (each one's project is checked)

_IN_PATH = (
    ("model", re.compile(r"/api/registry/models/([^/]+)")),
    ("approval", re.compile(r"/api/registry/approvals/([^/]+)")),
    ("experiment", re.compile(r"/api/experiments/(?!by-name/)([^/]+)")),
    ("run", re.compile(r"/api/runs/(?!search$)([^/]+)")),
)


def _tagged(body: dict[str, Any]) -> list[Target]:
    tags = body.get("tags")
    project = tags.get(PROJECT_TAG) if isinstance(tags, dict) else None
    return [("project", project if isinstance(project, str) and project else DEFAULT_PROJECT)]


def _retagged(body: dict[str, Any]) -> list[Target]:
    """Moving a model to another project by its tag needs the role in the new project too."""
    tags = body.get("tags")
    return _tagged(body) if isinstance(tags, dict) and PROJECT_TAG in tags else []


def _field(kind: str, name: str) -> Callable[[dict[str, Any]], list[Target]]:
    def read(body: dict[str, Any]) -> list[Target]:
        value = body.get(name)
        return [(kind, str(value))] if isinstance(value, str | int) and not isinstance(value, bool) else []
    return read


def _run_ids(body: dict[str, Any]) -> list[Target]:
    ids = body.get("run_ids")
    if not isinstance(ids, list):
        return []
    # fail closed: a run that is not checked must not be written either
    try:
        distinct = set(ids)  # a batch is mostly one run's points: set() is the fast way to its few ids
    except TypeError:
        raise InvalidInputError(field="run_ids", value="a list or an object", expected="run ids (strings)") from None
    odd = [i for i in distinct if not isinstance(i, str)]
    if odd:
        raise InvalidInputError(field="run_ids", value=odd[0], expected="run ids (strings)")
    if len(distinct) > _MAX_RUNS:
        raise InvalidInputError(field="run_ids", value=f"{len(distinct)} distinct runs",
                                expected=f"at most {_MAX_RUNS:,} distinct runs in one request")
    return [("run", i) for i in distinct]


# (method, path pattern) -> what its body names; the body is read only for these
_IN_BODY: tuple[tuple[str, re.Pattern[str], Callable[[dict[str, Any]], list[Target]]], ...] = (
    ("POST", re.compile(r"/api/experiments$"), _tagged),
    ("POST", re.compile(r"/api/registry/models$"), _tagged),
    ("PATCH", re.compile(r"/api/registry/models/[^/]+$"), _retagged),
    ("POST", re.compile(r"/api/runs$"), _field("experiment", "experiment_id")),
    ("PATCH", re.compile(r"/api/runs/[^/]+$"), _field("experiment", "experiment_id")),
    ("POST", re.compile(r"/api/(metrics/batch|heartbeat)$"), _run_ids),
    ("POST", re.compile(r"/api/registry/environments/[^/]+/deployments$"), _field("model", "name")),
)


def path_targets(path: str) -> list[Target]:
    """The resource the path names (none: the request is about project ``default``)."""
    for kind, pattern in _IN_PATH:
        match = pattern.match(path)
        if match:
            return [(kind, unquote(match.group(1)))]
    return []


def reads_body(method: str, path: str) -> bool:
    """Whether the request names its target in the body."""
    return any(method == m and pattern.match(path) for m, pattern, _ in _IN_BODY)


def body_targets(method: str, path: str, body: Any) -> list[Target]:
    """The resources a JSON ``body`` names (a body that is not an object names none: the handler refuses it)."""
    if not isinstance(body, dict):
        return []
    for m, pattern, read in _IN_BODY:
        if method == m and pattern.match(path):
            return read(body)
    return []
