"""Which resources a request touches, so that its project can be found: from the path, and for the few routes
that name their target only in the JSON body, from the body.

A target is (kind, key): kind 'model', 'approval', 'experiment', 'run', 'monitor', 'alert_rule', 'automation_rule'
(looked up: see mloop.auth.projects) or 'project' (the key is the project itself: a resource created with a
``project`` tag, or a feature project named by the ``project`` query parameter). MLflow's API names its resources
in the query (GET) or the body (writes) rather than the path: those are read too.

>>> path_targets("/api/runs/abc/end")
[('run', 'abc')]
>>> body_targets("POST", "/api/experiments", {"name": "eta", "tags": {"project": "fraud"}})
[('project', 'fraud')]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from mloop.auth.roles import DEFAULT_PROJECT, PROJECT_TAG
from mloop.errors import InvalidInputError, MloopError

__all__ = ["body_targets", "path_targets", "query_targets", "reads_body"]

Target = tuple[str, str]
_MAX_RUNS = 1_000  # distinct runs one metric batch may touch (each one's project is checked)

_IN_PATH = (
    ("model", re.compile(r"/api/registry/models/([^/]+)")),
    ("approval", re.compile(r"/api/registry/approvals/([^/]+)")),
    ("experiment", re.compile(r"/api/experiments/(?!by-name/)([^/]+)")),
    ("experiment_name", re.compile(r"/api/experiments/by-name/([^/]+)")),
    ("run", re.compile(r"/api/runs/(?!search$|page$)([^/]+)")),
    ("run", re.compile(r"/api/flows/runs/([^/]+)")),  # a flow run is a tracking run, its tasks are its children
    ("run", re.compile(r"/api/flows/tasks/([^/]+)")),  # a task's id is its own tracking run's
    ("run", re.compile(r"/api/quality/runs/([^/]+)")),
    ("model", re.compile(r"/api/quality/models/([^/]+)")),
    ("monitor", re.compile(r"/api/monitors/([^/]+)")),
    ("automation_rule", re.compile(r"/api/automation/rules/([^/]+)")),
    ("model", re.compile(r"/api/automation/models/([^/]+)")),
    # MLflow's artifact proxy: <experiment>/<run_id>/artifacts/... (a file, or a multipart upload of one)
    ("run", re.compile(r"/api/2\.0/mlflow-artifacts/(?:artifacts|mpu/[a-z]+)/+[^/]+/([0-9a-f]{32})(/|$)")),
)
_ARTIFACT_LISTING = re.compile(r"/api/2\.0/mlflow-artifacts/artifacts$")
_RUN_IN_ARTIFACT_PATH = re.compile(r"/*[^/]+/([0-9a-f]{32})(/|$)")
_MLFLOW = r"/(?:ajax-)?api/2\.0/mlflow/"
_MLFLOW_MODELS = re.compile(_MLFLOW + r"(registered-models|model-versions)/")
_FEATURES = re.compile(r"/api/features(/|$)")
_QUERY_FIELDS = (("run_id", "run"), ("run_uuid", "run"), ("experiment_id", "experiment"),
                 ("experiment_name", "experiment_name"))
_RESOLVE = re.compile(r"/api/registry/resolve$")


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


def _alert_rule_monitors(body: dict[str, Any]) -> list[Target]:
    """Alert rules each name the monitor they watch: the role is needed in each monitor's project."""
    rules = body.get("rules")
    if not isinstance(rules, list):
        return []
    return [("monitor", m) for m in {r.get("monitor") for r in rules if isinstance(r, dict)} if isinstance(m, str)]


def _mlflow_tagged(body: dict[str, Any]) -> list[Target]:
    """MLflow's create calls carry tags as a list of {key, value}."""
    tags = body.get("tags")
    found = [t.get("value") for t in tags if isinstance(t, dict) and t.get("key") == PROJECT_TAG] \
        if isinstance(tags, list) else []
    project = found[-1] if found else None
    return [("project", project if isinstance(project, str) and project else DEFAULT_PROJECT)]


def _mlflow_named(kind_of_name: str | None) -> Callable[[dict[str, Any]], list[Target]]:
    """An MLflow call's run, experiment and (under the registry's paths) model, from the body's fields."""
    def read(body: dict[str, Any]) -> list[Target]:
        fields = (*_QUERY_FIELDS, ("name", kind_of_name)) if kind_of_name else _QUERY_FIELDS
        return [(kind, str(body[name])) for name, kind in fields
                if isinstance(body.get(name), str | int) and not isinstance(body.get(name), bool)]
    return read


def _mlflow_created(body: dict[str, Any]) -> list[Target]:
    return _mlflow_tagged(body) + _mlflow_named(None)(body)


def _flow_records(body: dict[str, Any]) -> list[Target]:
    """The runs a batch of a flow's task records writes to: each task's own run (a task's id is its run's id)
    and, for a task that starts, its flow run."""
    records = body.get("records")
    if not isinstance(records, list):
        return []
    # a value that is not a string is refused by the route's own checks before anything is written
    ids = {r[field] for r in records if isinstance(r, dict) for field in ("task_id", "run_id")
           if isinstance(r.get(field), str)}
    return _run_ids({"run_ids": sorted(ids)})


# (methods, path pattern) -> what its body names; the body is read only for these
_IN_BODY: tuple[tuple[str, re.Pattern[str], Callable[[dict[str, Any]], list[Target]]], ...] = (
    ("POST", re.compile(r"/api/experiments$"), _tagged),
    ("POST", re.compile(r"/api/registry/models$"), _tagged),
    ("PATCH", re.compile(r"/api/registry/models/[^/]+$"), _retagged),
    ("POST", re.compile(r"/api/runs$"), _field("experiment", "experiment_id")),
    ("PATCH", re.compile(r"/api/runs/[^/]+$"), _field("experiment", "experiment_id")),
    ("POST", re.compile(r"/api/(metrics/batch|heartbeat|flows/heartbeat)$"), _run_ids),
    # what a flow's orchestrator writes through the server names its runs in the body
    ("POST", re.compile(r"/api/flows/runs$"), _field("experiment", "experiment_id")),
    ("POST", re.compile(r"/api/flows/records$"), _flow_records),
    ("POST", re.compile(r"/api/registry/environments/[^/]+/deployments$"), _field("model", "name")),
    ("POST", re.compile(r"/api/monitors$"), _field("model", "model")),
    ("POST", re.compile(r"/api/alerts/silences$"), _field("alert_rule", "rule")),
    ("PUT", re.compile(r"/api/alerts/rules$"), _alert_rule_monitors),
    # MLflow: creating names the project in its tags; every other write names its run, experiment or model
    ("POST", re.compile(_MLFLOW + r"(experiments|registered-models)/create$"), _mlflow_created),
    ("POST", re.compile(_MLFLOW + r"logged-models$"), _mlflow_named(None)),  # its experiment_id
    ("POST|PATCH|DELETE", re.compile(_MLFLOW + r"(registered-models|model-versions)/(?!search$)"),
     _mlflow_named("model")),
    ("POST|PATCH|DELETE", re.compile(_MLFLOW + r"(runs|experiments|metrics)/(?!search$)"), _mlflow_named(None)),
)


def path_targets(path: str) -> list[Target]:
    """The resource the path names (none: the request is about project ``default``)."""
    for kind, pattern in _IN_PATH:
        match = pattern.match(path)
        if match:
            return [(kind, unquote(match.group(1)))]
    return []


def query_targets(path: str, query: bytes | str) -> list[Target]:
    """The resources the query string names: a feature project, or MLflow's run, experiment or model."""
    if not query:
        return []
    params = parse_qs(query.decode("latin-1") if isinstance(query, bytes) else query)
    if _FEATURES.match(path):
        return [("project", params.get("project", [DEFAULT_PROJECT])[-1])]
    if _RESOLVE.match(path) and params.get("uri"):
        return _uri_targets(params["uri"][-1])
    if _ARTIFACT_LISTING.match(path) and params.get("path"):
        run = _RUN_IN_ARTIFACT_PATH.match(params["path"][-1])
        return [("run", run.group(1))] if run else []
    if not re.match(_MLFLOW, path):
        return []
    fields = (*_QUERY_FIELDS, ("name", "model")) if _MLFLOW_MODELS.match(path) else _QUERY_FIELDS
    # a handler reads the last value of a repeated parameter (Starlette's QueryParams.get): that one is checked
    return [(kind, params[name][-1]) for name, kind in fields if params.get(name)]


def _uri_targets(uri: str) -> list[Target]:
    """The model or run a model URI names (an unparseable one names none: the handler refuses it)."""
    from mloop.registry.uri import parse_uri

    try:
        ref = parse_uri(uri)
    except MloopError:
        return []
    if ref.kind == "models" and ref.name:
        return [("model", ref.name)]
    return [("run", ref.run_id)] if ref.run_id else []


def reads_body(method: str, path: str) -> bool:
    """Whether the request names its target in the body."""
    return any(method in m.split("|") and pattern.match(path) for m, pattern, _ in _IN_BODY)


def body_targets(method: str, path: str, body: Any) -> list[Target]:
    """The resources a JSON ``body`` names (a body that is not an object names none: the handler refuses it)."""
    if not isinstance(body, dict):
        return []
    for m, pattern, read in _IN_BODY:
        if method in m.split("|") and pattern.match(path):
            return read(body)
    return []
