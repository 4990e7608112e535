"""Lineage both ways: version -> run -> datasets and feature views, and dataset -> the versions trained on it.

A version logged inside a flow step also names its flow run: the flow, the run's parameters, the step and
every dataset the run's tasks recorded (a training set built in ``prepare`` and used in ``train`` included).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mloop.errors import InvalidInputError, NotFoundError
from mloop.registry import _models
from mloop.registry import _tables as t
from mloop.registry.entities import ModelVersion

if TYPE_CHECKING:
    from mloop.registry.client import RegistryClient
    from mloop.tracking.entities import Run

__all__ = ["DIGEST_PATTERN", "training_tag", "version_lineage", "versions_for_digest"]

# a full sha256 hex digest or a prefix of 8 or more of its characters (public: the REST API documents it)
DIGEST_PATTERN = r"^[0-9a-f]{8,}$"
FLOW_TAG, STEP_TAG, FLOW_DIGEST_TAG = "mloop.flow", "mloop.flow.step", "mloop.flow.digest"
MAX_DEPTH = 32  # parent chains and nested runs deeper than this are not followed (a cycle cannot hang a request)
MAX_RUNS = 10_000  # runs of one flow run whose inputs lineage reads
CHUNK = 500  # run ids per IN list


def version_lineage(client: RegistryClient, name: str, version: int) -> dict[str, Any]:
    """A version, its source run (params, metrics, status), the datasets and feature views it used, its flow.

    ``datasets`` are the inputs of the version's run and of the runs it is nested in (each with its
    ``run_id``); ``flow`` (or None) is the flow run it came from: name, run id, parameters, the step and
    task, and ``datasets`` recorded by any task of that run (each with its ``step``). ``feature_views`` are
    the feature views (with versions) and feature references behind any of those datasets.
    """
    found = client.get_version(name, version)
    out: dict[str, Any] = {"model": name, "version": found.version, "source": found.source, "run": None,
                           "datasets": [], "feature_views": [], "flow": None}
    if found.run_id is None:
        return out
    run = client.runs.get_run(found.run_id)
    out["run"] = {"run_id": run.run_id, "name": run.name, "experiment_id": run.experiment_id,
                  "status": str(run.status), "params": run.params, "metrics": run.metrics,
                  "git_commit": run.tags.get("mloop.git.commit")}
    chain = [run, *_ancestors(client, run.parent_run_id)]
    out["run"]["ancestors"] = [{"run_id": r.run_id, "name": r.name, "flow": r.tags.get(FLOW_TAG)} for r in chain[1:]]
    at = next((i for i, r in enumerate(chain) if r.tags.get(FLOW_TAG)), None)
    own = chain if at is None else chain[:at]
    out["datasets"] = [d for r in own for d in _inputs(client, {r.run_id: {}})]
    if at is not None:
        out["flow"] = _flow(client, chain[at], chain[at - 1] if at else None)
    out["feature_views"] = _feature_views(out["datasets"] + (out["flow"] or {}).get("datasets", []))
    return out


def training_tag(client: RegistryClient, version: ModelVersion, key: str) -> str | None:
    """The value of tag ``key`` on the run that trained ``version``, or on the nearest run it is nested in (a
    flow step's run finds its flow run's ``mloop.flow.digest``); None when no run of the chain carries it."""
    if version.run_id is None:
        return None
    try:
        chain = [client.runs.get_run(version.run_id)]
    except NotFoundError:
        return None
    chain += _ancestors(client, chain[0].parent_run_id)
    return next((r.tags[key] for r in chain if r.tags.get(key)), None)


def _ancestors(client: RegistryClient, run_id: str | None) -> list[Run]:
    """The chain of parent runs, nearest first; it ends at a run that is no longer there (purged before the
    guard kept ancestors, or removed by hand): the lineage shows what is left rather than failing."""
    chain: list[Run] = []
    seen: set[str] = set()
    while run_id is not None and run_id not in seen and len(chain) < MAX_DEPTH:
        seen.add(run_id)
        try:
            chain.append(client.runs.get_run(run_id))
        except NotFoundError:
            break
        run_id = chain[-1].parent_run_id
    return chain


def _flow(client: RegistryClient, flow_run: Run, task: Run | None) -> dict[str, Any]:
    """The flow run a version came from, the step that logged it, and what every task of the run read."""
    steps = _task_steps(client, flow_run.run_id)
    return {"name": flow_run.tags[FLOW_TAG], "run_id": flow_run.run_id, "params": flow_run.params,
            "step": None if task is None else task.tags.get(STEP_TAG),
            "task_id": None if task is None else task.run_id,
            "datasets": _inputs(client, {run_id: {"step": step} for run_id, step in steps.items()})}


def _task_steps(client: RegistryClient, flow_run_id: str) -> dict[str, str | None]:
    """Every run nested in a flow run (its tasks, and runs started inside them) -> the step it belongs to."""
    from mloop.tracking import _tables as tt

    steps: dict[str, str | None] = {}
    level: dict[str, str | None] = {flow_run_id: None}
    step_tag = (tt.tags.c.run_id == tt.runs.c.run_id) & (tt.tags.c.key == STEP_TAG)
    with client.db.read() as conn:
        for _ in range(MAX_DEPTH):
            parents, level = list(level.items()), {}
            for start in range(0, len(parents), CHUNK):  # bounded IN lists
                chunk = dict(parents[start:start + CHUNK])
                for r in conn.execute(select(tt.runs.c.run_id, tt.runs.c.parent_run_id, tt.tags.c.value)
                                      .outerjoin(tt.tags, step_tag).where(tt.runs.c.parent_run_id.in_(list(chunk)))):
                    if r.run_id not in steps:
                        level[r.run_id] = r.value or chunk[r.parent_run_id]
            steps.update(level)
            if not level or len(steps) >= MAX_RUNS:
                break
    return steps


def _inputs(client: RegistryClient, runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The dataset inputs of ``runs`` (run id -> extra fields for each of its datasets), oldest first."""
    from mloop.tracking import _tables as tt

    if not runs:
        return []
    ids = list(runs)
    found: list[dict[str, Any]] = []
    with client.db.read() as conn:
        for start in range(0, len(ids), CHUNK):
            query = (select(tt.datasets, tt.run_inputs.c.context, tt.run_inputs.c.run_id)
                     .join(tt.run_inputs, tt.run_inputs.c.dataset_id == tt.datasets.c.dataset_id)
                     .where(tt.run_inputs.c.run_id.in_(ids[start:start + CHUNK])))
            for r in conn.execute(query):
                found.append({"name": r.name, "digest": r.digest, "rows": r.rows, "context": r.context,
                              "source": r.source, "schema": json.loads(r.schema), "run_id": r.run_id,
                              "created": r.created, **runs[r.run_id]})
    found.sort(key=lambda d: (d["created"], d["run_id"], d["name"]))
    for d in found:
        del d["created"]
    return found


def _feature_views(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feature views (project, name, version) and the references read from each, over ``datasets``."""
    from mloop.features.lineage import parse_source

    views: dict[tuple[str, str, int | None], set[str]] = {}
    for d in datasets:
        parsed = parse_source(d["source"])
        if parsed is None:
            continue
        for view in parsed["views"]:
            refs = {f for f in parsed["features"] if f.split(":", 1)[0] == view["name"]}
            views.setdefault((parsed["project"], view["name"], view["version"]), set()).update(refs)
    return [{"project": p, "name": n, "version": v, "features": sorted(refs)}
            for (p, n, v), refs in sorted(views.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0))]


def versions_for_digest(client: RegistryClient, digest: str) -> list[ModelVersion]:
    """Every registered version trained on a dataset with ``digest`` (a full or 8+ character prefix).

    A version counts when its run, a run it is nested in, or (inside a flow) another task of its flow run
    recorded the dataset.
    """
    if not isinstance(digest, str) or not re.fullmatch(DIGEST_PATTERN, digest):
        raise InvalidInputError(field="digest", value=digest, expected="a sha256 hex digest (at least 8 characters)")
    digests = [digest] if len(digest) == 64 else _expand(client, digest)
    run_ids = sorted({r for d in digests for r in client.runs.runs_with_dataset(d)})
    if not run_ids:
        return []
    run_ids = sorted(_downstream(client, run_ids))
    with client.db.read() as conn:
        rows = conn.execute(select(t.model_versions).where(t.model_versions.c.run_id.in_(run_ids))
                            .order_by(t.model_versions.c.name, t.model_versions.c.version)).all()
        return _models.versions_from_rows(conn, rows)


def versions_from_run(client: RegistryClient, run_id: str, name: str | None = None) -> list[ModelVersion]:
    """Versions (of ``name`` when given) whose run is ``run_id`` or nested in it at any depth, oldest first."""
    if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{32}", run_id):
        raise InvalidInputError(field="run_id", value=run_id, expected="a run id (32 hex characters)")
    run_ids = sorted({run_id, *_task_steps(client, run_id)})
    query = select(t.model_versions).where(t.model_versions.c.run_id.in_(run_ids))
    if name is not None:
        query = query.where(t.model_versions.c.name == name)
    with client.db.read() as conn:
        rows = conn.execute(query.order_by(t.model_versions.c.created, t.model_versions.c.version)).all()
        return _models.versions_from_rows(conn, rows)


def _downstream(client: RegistryClient, run_ids: list[str]) -> set[str]:
    """``run_ids``, the runs nested in them and, for a flow task, every run of its flow run."""
    out = set(run_ids)
    for run_id in run_ids:
        run = client.runs.get_run(run_id)
        chain = [run, *_ancestors(client, run.parent_run_id)]
        flow_run = next((r for r in chain if r.tags.get(FLOW_TAG)), None)
        out.update(_task_steps(client, (flow_run or chain[0]).run_id))
    return out


def _expand(client: RegistryClient, prefix: str) -> list[str]:
    from mloop.tracking import _tables as tt

    with client.db.read() as conn:
        return [r.digest for r in conn.execute(select(tt.datasets.c.digest).where(
            tt.datasets.c.digest.startswith(prefix)).distinct())]
