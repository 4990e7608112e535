"""Read-only REST API of flow runs, under ``/api/flows``: runs with their status, a run's tasks (the graph's
edges are each task's inputs), a task's captured logs, a preview of an artifact. Artifacts are never unpickled
as such: reading a pickle can run code, which a web request must not do; a preview reads only tables, arrays and
pickles of plain values (mloop.flows.preview)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from mloop._util.openapi import error_responses
from mloop.config import Settings
from mloop.server.api._schema import TextPath
from mloop.server.visibility import sql_run_visible

router = APIRouter(prefix="/flows", tags=["flows"])
MAX_LOG = 256 * 1024  # characters of each log a page gets: the end of it, where a failure is
Limit = Annotated[int, Query(ge=1, le=1000)]
Filter = Annotated[str | None, Query(max_length=256)]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _run(run: Any) -> dict[str, Any]:
    row = run._row
    return {"run_id": run.id, "flow": run.flow_name, "status": run.status, "params": run.params, "tags": run.tags,
            "created": row.created, "ended": row.ended, "origin_run_id": run.origin_run_id,
            "executor": run.executor}


@router.get("/runs")
def list_flow_runs(request: Request, flow: Filter = None, status: Filter = None, tag: Filter = None,
                   limit: Limit = 100) -> list[dict[str, Any]]:
    """Runs of every flow (or one), newest first, among those the caller may see (filtered in the query, so
    ``limit`` runs come back when there are that many)."""
    from mloop.flows import _tables as flow_tables
    from mloop.flows.client import list_runs

    visible = sql_run_visible(request, flow_tables.flow_runs.c.run_id)
    return [_run(r) for r in list_runs(flow, tag=tag, status=status, limit=limit, settings=_settings(request),
                                       where=visible)]


@router.get("/runs/{run_id}", responses=error_responses(404))
def get_flow_run(run_id: TextPath, request: Request) -> dict[str, Any]:
    """A run and every task: step, path (foreach index, loop pass), state, times, inputs, reuse, artifacts."""
    from mloop.flows.client import get_run

    run = get_run(run_id, settings=_settings(request))
    tasks = [task for step in run.steps.values() for task in step]
    refs = run._ctx.repo.artifacts([t.id for t in tasks]) if tasks else {}
    return {**_run(run), "tasks": [{
        "task_id": t.id, "step": t.step, "path": t.path, "index": t.index, "status": t.status,
        "attempts": t.attempts, "error": t.error, "inputs": t._row.inputs, "reused_from": t.reused_from,
        "cached": bool(t.reused_from and t._row.cache_key), "started": t._row.started, "ended": t._row.ended,
        "artifacts": [{"name": name, "encoding": ref.encoding, "size": ref.size, "sha256": ref.sha256}
                      for name, ref in sorted(refs.get(t.id, {}).items())]} for t in tasks]}


def _task(run_id: str, task_id: str, request: Request) -> tuple[Any, Any]:
    """The flow run and its task named by id or path (404 for either unknown)."""
    from mloop.errors import NotFoundError
    from mloop.flows.client import get_run

    run = get_run(run_id, settings=_settings(request))
    task = next((t for step in run.steps.values() for t in step if t.id == task_id or t.path == task_id), None)
    if task is None:
        raise NotFoundError(f"Run {run.id[:8]} has no task {task_id!r}.", field="task_id")
    return run, task


@router.get("/runs/{run_id}/tasks/{task_id}/logs", responses=error_responses(404))
def task_logs(run_id: TextPath, task_id: TextPath, request: Request) -> dict[str, Any]:
    """The captured stdout and stderr of one task (the last 256 KiB of each)."""
    _, task = _task(run_id, task_id, request)
    out: dict[str, Any] = {"task_id": task.id, "path": task.path}
    for name in ("stdout", "stderr"):
        text = getattr(task, name)
        out[name], out[f"{name}_truncated"] = text[-MAX_LOG:], len(text) > MAX_LOG
    return out


@router.get("/runs/{run_id}/tasks/{task_id}/artifacts/{name}/preview", responses=error_responses(404))
def artifact_preview(run_id: TextPath, task_id: TextPath, name: TextPath, request: Request) -> dict[str, Any]:
    """A look at one artifact of a task: a table's first rows and column types, an array's shape and first values,
    a plain value (numbers, text, lists, dicts); anything that would run code to load, or is too large, only by
    its encoding and size."""
    from mloop.errors import NotFoundError
    from mloop.flows.preview import MAX_READ_BYTES, preview

    run, task = _task(run_id, task_id, request)
    ref = task.artifacts.get(name)
    if ref is None:
        raise NotFoundError(f"Task {task.path} has no artifact {name!r}; it has {sorted(task.artifacts)}.",
                            field="name")
    shown = {"name": name, "encoding": ref.encoding, "size": ref.size}
    if ref.size > MAX_READ_BYTES:
        return {**shown, "kind": "opaque", "reason": f"{ref.size:,} bytes: too large to read for a preview"}
    return {**shown, **preview(run._ctx.store.get(ref.sha256), ref.encoding)}
