"""What a flow's orchestrator, a resume and the flows client read and write through ``mloop server``, under
``/api/flows``: the server side of ``mloop.flows._http.HttpFlowRepository``. Every body is bounded and checked
field by field here, so the repository below stores only what a direct client could have stored."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from mloop._util.names import check_key
from mloop._util.openapi import error_responses
from mloop.errors import ConflictError, NotFoundError
from mloop.flows._sql import SqlFlowRepository
from mloop.flows.repository import Record, open_flow_repo
from mloop.server.api import _schema
from mloop.server.api._schema import TextPath

router = APIRouter(prefix="/flows", tags=["flows"])

Int64 = _schema.integer(_schema.INT64_MIN, _schema.INT64_MAX)
Id = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]  # a run or task id, as the orchestrator makes them
Sha = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# an artifact is an attribute a step assigned (or a parameter): never a path, so no name can lead anywhere
ArtifactName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,249}$")]
Encoding = Literal["pickle", "npy", "parquet-pandas", "parquet-arrow"]
Status = Literal["running", "finished", "failed", "killed"]
FlowName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00]*$")]
Tag = Annotated[str, Field(min_length=1, max_length=250, json_schema_extra=_schema.documented(_schema.KEY_PATTERN))]
Input = Annotated[str, Field(pattern=r"^([0-9a-f]{32}|<params>)$")]


def _text(max_chars: int) -> Any:
    """Text without NUL (PostgreSQL cannot hold one) of at most ``max_chars``, checked as documented."""
    return Annotated[str, Field(max_length=max_chars, pattern=_schema.NO_NUL_PATTERN)]


TaskPath, FileText, ShortText, LongText, ErrorText = _text(512), _text(4096), _text(256), _text(5000), _text(1_000_000)
MAX_IDS = 1000
MAX_RECORDS = 5000


def flow_repo(request: Request) -> SqlFlowRepository:
    state = request.app.state
    if getattr(state, "flow_repo", None) is None:
        state.flow_repo = open_flow_repo(state.settings)
    return state.flow_repo  # type: ignore[no-any-return]


Repo = Annotated[SqlFlowRepository, Depends(flow_repo)]


def _row(row: Any) -> dict[str, Any]:
    return dataclasses.asdict(row)


# ---------------------------------------------------------------- runs
class ExperimentIn(BaseModel):
    name: FlowName


@router.post("/experiments", responses=error_responses(409))
def flow_experiment(body: ExperimentIn, r: Repo) -> dict[str, str]:
    """The id of the experiment a flow's runs go to (created on first use)."""
    return {"experiment_id": r.experiment_id(body.name)}


class RunIn(BaseModel):
    run_id: Id
    experiment_id: Annotated[str, Field(pattern=r"^[0-9]{1,9}$")]
    flow_name: FlowName
    file: FileText
    params: dict[Annotated[str, Field(max_length=250)], Any] = Field(default_factory=dict, max_length=1000)
    tags: list[Tag] = Field(default_factory=list, max_length=100)
    run_tags: dict[Annotated[str, Field(min_length=1, max_length=250)], LongText] = Field(default_factory=dict,
                                                                                        max_length=100)
    origin: Id | None = None
    executor: Annotated[str, Field(pattern=r"^[a-z]{1,32}$")]
    user: ShortText


@router.post("/runs", responses=error_responses(404, 409))
def create_flow_run(body: RunIn, r: Repo) -> dict[str, str]:
    """Record a flow run (and its tracking run); a retry with the same id finds it instead of making another."""
    try:
        return {"run_id": r.get_run(body.run_id).run_id}
    except NotFoundError:
        pass
    for tag in body.tags:
        check_key(tag, "tags")
    try:
        run_id = r.create_run(**body.model_dump())
    except IntegrityError as exc:  # the experiment is gone, or the id was taken meanwhile
        raise ConflictError(f"Could not record flow run {body.run_id}: {exc.orig}", field="run_id") from None
    return {"run_id": run_id}


class EndIn(BaseModel):
    status: Status


@router.post("/runs/{run_id}/end", responses=error_responses(404))
def end_flow_run(run_id: Id, body: EndIn, r: Repo) -> dict[str, bool]:
    r.get_run(run_id)  # a 404 for a run that is not there
    r.end_run(run_id, body.status)
    return {"ok": True}


class HeartbeatIn(BaseModel):
    run_ids: list[Id] = Field(max_length=MAX_RECORDS)


@router.post("/heartbeat")
def flow_heartbeat(body: HeartbeatIn, r: Repo) -> dict[str, bool]:
    """The orchestrator is alive: its run and live tasks are not reaped as dead."""
    r.heartbeat(body.run_ids)
    return {"ok": True}


@router.get("/runs/{run_id}/row", responses=error_responses(404))
def flow_run_row(run_id: TextPath, r: Repo) -> dict[str, Any]:
    """A flow run as stored (by id, or a prefix of at least 6 characters)."""
    return _row(r.get_run(run_id))


@router.get("/rows")
def flow_run_rows(r: Repo, request: Request, flow: Annotated[FlowName | None, Query()] = None,
                  tag: Annotated[str | None, Query(max_length=250, pattern=_schema.NO_NUL_PATTERN)] = None,
                  status: Annotated[Status | None, Query()] = None,
                  limit: Annotated[int | None, Query(ge=1, le=100_000)] = None) -> list[dict[str, Any]]:
    """Flow runs as stored, newest first: those of the projects the caller may see, like ``/flows/runs``."""
    from mloop.flows import _tables as flow_tables
    from mloop.server.visibility import sql_run_visible

    visible = sql_run_visible(request, flow_tables.flow_runs.c.run_id)
    return [_row(row) for row in r.list_runs(flow, tag, status, limit, where=visible)]


@router.get("/names")
def flow_names(r: Repo) -> list[str]:
    return r.flow_names()


class TagsIn(BaseModel):
    add: list[Tag] = Field(default_factory=list, max_length=100)
    remove: list[Tag] = Field(default_factory=list, max_length=100)


@router.post("/runs/{run_id}/tags", responses=error_responses(404))
def flow_run_tags(run_id: Id, body: TagsIn, r: Repo) -> dict[str, Any]:
    r.get_run(run_id)
    if body.add:
        r.add_tags(run_id, [check_key(t, "add") for t in body.add])
    if body.remove:
        r.remove_tags(run_id, [check_key(t, "remove") for t in body.remove])
    return {"tags": r.get_run(run_id).tags}


# ---------------------------------------------------------------- tasks
class StartTask(BaseModel):
    kind: Literal["start_task"]
    task_id: Id
    run_id: Id
    experiment_id: Annotated[str, Field(pattern=r"^[0-9]{1,9}$")]
    step: FlowName
    path: TaskPath
    inputs: list[Input] = Field(max_length=100_000)
    cache_key: Sha | None = None
    log_dir: FileText | None = None
    user: ShortText
    now: Int64 | None = None


class Transition(BaseModel):
    steps: list[FlowName] = Field(max_length=1000)
    foreach: FlowName | None = None
    condition: FlowName | None = None
    count: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


class FinishTask(BaseModel):
    kind: Literal["finish_task"]
    task_id: Id
    status: Status
    transition: Transition | None = None
    artifacts: dict[ArtifactName, tuple[Sha, Encoding, Annotated[int, Field(ge=0, le=2**53)]]] | None = Field(
        default=None, max_length=10_000)
    error: ErrorText | None = None
    stdout_sha: Sha | None = None
    stderr_sha: Sha | None = None
    reused_from: Id | None = None
    now: Int64 | None = None


class SetAttempt(BaseModel):
    kind: Literal["set_attempt"]
    task_id: Id
    attempt: Annotated[int, Field(ge=0, le=1000)]


class RecordsIn(BaseModel):
    records: list[Annotated[StartTask | FinishTask | SetAttempt, Field(discriminator="kind")]] = Field(
        max_length=MAX_RECORDS)


@router.post("/records", responses=error_responses(409))
def flow_records(body: RecordsIn, r: Repo) -> dict[str, int]:
    """A batch of the orchestrator's writes (tasks started, finished, retried), stored in one transaction."""
    records: list[Record] = []
    for item in body.records:
        values = item.model_dump(exclude={"kind"}, exclude_none=isinstance(item, FinishTask))
        if isinstance(item, FinishTask) and item.transition is not None:
            values["transition"] = item.transition.model_dump(exclude_unset=True)  # as the orchestrator sent it
        records.append((item.kind, values))
    try:
        r.record(records)
    except IntegrityError as exc:  # a task of a run not recorded, or a task recorded twice
        raise ConflictError(f"Could not record the batch: {exc.orig}", field="records") from None
    return {"recorded": len(records)}


@router.get("/runs/{run_id}/task-rows")
def flow_task_rows(run_id: TextPath, r: Repo) -> list[dict[str, Any]]:
    """Every task of a run as stored, in the order they started."""
    return [_row(t) for t in r.tasks(run_id)]


@router.get("/tasks/{task_id}", responses=error_responses(404))
def flow_task_row(task_id: TextPath, r: Repo) -> dict[str, Any]:
    return _row(r.get_task(task_id))


@router.get("/cache/{cache_key}")
def flow_cached_task(cache_key: TextPath, r: Repo) -> dict[str, Any] | None:
    """The newest task @cache may reuse for this key, or null."""
    found = r.cached_task(cache_key)
    return None if found is None else _row(found)


class RefsIn(BaseModel):
    task_ids: list[Id] = Field(max_length=MAX_IDS)


@router.post("/artifact-refs")
def flow_artifact_refs(body: RefsIn, r: Repo) -> dict[str, dict[str, list[Any]]]:
    """Each task's artifacts: name -> [sha256, encoding, size]."""
    return {tid: {name: list(ref) for name, ref in refs.items()} for tid, refs in r.artifacts(body.task_ids).items()}


# ---------------------------------------------------------------- schedules
class ClaimIn(BaseModel):
    flow_name: FlowName
    due: Int64
    cron: ShortText
    file: FileText


@router.post("/schedules/claim")
def claim_schedule(body: ClaimIn, r: Repo) -> dict[str, bool]:
    """Record that a scheduled flow starts for ``due``; false when another scheduler did already."""
    return {"claimed": r.claim_schedule_start(body.flow_name, body.due, body.cron, body.file)}


class ScheduleRunIn(BaseModel):
    flow_name: FlowName
    due: Int64
    run_id: Id | None = None


@router.post("/schedules/run")
def schedule_run(body: ScheduleRunIn, r: Repo) -> dict[str, bool]:
    r.set_schedule_run(body.flow_name, body.due, body.run_id)
    return {"ok": True}


@router.get("/schedules")
def schedules(r: Repo, flow: Annotated[FlowName | None, Query()] = None) -> list[dict[str, Any]]:
    return r.schedule_starts(flow)
