"""Tracking over REST: experiments, runs, params, metrics, artifacts, datasets, search."""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, StrictBool
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from mloop._util.names import check_artifact_path, check_key
from mloop._util.openapi import error_responses
from mloop.errors import BackendError, DataIntegrityError, InvalidInputError, NotFoundError
from mloop.server.api import _schema
from mloop.server.api._chunks import append_at, file_sha256, read_chunk, staging_folder
from mloop.server.api._schema import Description, Name, OptionalName, Text, TextPath
from mloop.server.auth import actor_of
from mloop.server.visibility import experiments_for_search, keep_visible, tagged_visible, visible_runs
from mloop.tracking._sql import SqlTrackingRepository
from mloop.tracking._values import MAX_TAG_CHARS
from mloop.tracking._wire import float_in, float_out, frame_out
from mloop.tracking.client import open_repository
from mloop.tracking.entities import Dataset, RunStatus

router = APIRouter(tags=["tracking"])

# a JSON body's 0 is not false, nor "5" or true an integer (pydantic would convert them silently)
Int64 = _schema.integer(_schema.INT64_MIN, _schema.INT64_MAX)
Key = Annotated[str, Field(min_length=1, max_length=250)]  # a tag key on an experiment or a new run: any text
TagValue = Text(MAX_TAG_CHARS)
IdText, DigestText, ShortText, SourceText = Text(32), Text(64), Text(256), Text(10_000)  # ids and text without NUL
# the keys of logged params and tags are checked as keys (check_key); the document says how
Params = _schema.keyed(Any, Key)
RunTags = _schema.keyed(TagValue, Key)


def repo(request: Request) -> SqlTrackingRepository:
    state = request.app.state
    if getattr(state, "tracking", None) is None:
        state.tracking = open_repository(state.settings)
    return state.tracking  # type: ignore[no-any-return]


Repo = Annotated[SqlTrackingRepository, Depends(repo)]


def _out(obj: Any) -> dict[str, Any]:
    data = dataclasses.asdict(obj)
    if "metrics" in data:
        data["metrics"] = {k: float_out(v) for k, v in data["metrics"].items()}
    return data


# ---------------------------------------------------------------- experiments
class ExperimentIn(BaseModel):
    name: Name = Field(min_length=1, max_length=256)
    tags: dict[Key, TagValue] = {}


class RenameIn(BaseModel):
    name: Name = Field(min_length=1, max_length=256)


@router.post("/experiments", status_code=201, responses=error_responses(409))
def create_experiment(body: ExperimentIn, r: Repo) -> dict[str, Any]:
    return _out(r.create_experiment(body.name, body.tags))


@router.get("/experiments")
def list_experiments(r: Repo, request: Request, include_deleted: bool = False) -> list[dict[str, Any]]:
    """Experiments in the projects the caller may see (few: filtered here, not paged)."""
    return [_out(e) for e in r.list_experiments(include_deleted) if tagged_visible(request, e.tags)]


@router.get("/experiments/by-name/{name}")
def get_experiment_by_name(name: TextPath, r: Repo) -> dict[str, Any] | None:
    found = r.get_experiment_by_name(name)
    return None if found is None else _out(found)


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: TextPath, r: Repo) -> dict[str, Any]:
    return _out(r.get_experiment(experiment_id))


@router.patch("/experiments/{experiment_id}", responses=error_responses(409))
def rename_experiment(experiment_id: TextPath, body: RenameIn, r: Repo) -> dict[str, Any]:
    r.rename_experiment(experiment_id, body.name)
    return _out(r.get_experiment(experiment_id))


@router.post("/experiments/{experiment_id}/delete")
def delete_experiment(experiment_id: TextPath, r: Repo) -> dict[str, str]:
    r.delete_experiment(experiment_id)
    return {"status": "deleted"}


@router.post("/experiments/{experiment_id}/restore")
def restore_experiment(experiment_id: TextPath, r: Repo) -> dict[str, str]:
    r.restore_experiment(experiment_id)
    return {"status": "active"}


# ---------------------------------------------------------------- runs
class RunIn(BaseModel):
    experiment_id: IdText = Field(min_length=1, max_length=32)
    name: OptionalName | None = Field(default=None, max_length=256)
    user: ShortText = Field(default="unknown", max_length=256)
    tags: dict[Key, TagValue] = {}
    parent_run_id: IdText | None = Field(default=None, max_length=32)
    description: Description = Field(default="", max_length=20_000)
    run_id: str | None = Field(default=None, pattern="^[0-9a-f]{32}$",
                               description="An id the client picks: a retry with the same id returns the run "
                                           "the first call created instead of a second run.")


class RunPatch(BaseModel):
    name: Name | None = Field(default=None, max_length=256)
    description: Description | None = Field(default=None, max_length=20_000)
    experiment_id: IdText | None = Field(default=None, max_length=32)


class EndIn(BaseModel):
    status: RunStatus


class HeartbeatIn(BaseModel):
    run_ids: list[Annotated[IdText, Field(max_length=32)]] = Field(max_length=10_000)


@router.post("/runs", status_code=201, responses=error_responses(404, 409))
def create_run(body: RunIn, r: Repo, request: Request) -> dict[str, Any]:
    user = actor_of(request, body.user)  # with auth on, the run's user is who the token says, not what the body says
    return _out(r.create_run(body.experiment_id, body.name, user, body.tags, body.parent_run_id,
                             body.description, run_id=body.run_id))


@router.get("/runs/{run_id}")
def get_run(run_id: TextPath, r: Repo) -> dict[str, Any]:
    return _out(r.get_run(run_id))


@router.patch("/runs/{run_id}")
def update_run(run_id: TextPath, body: RunPatch, r: Repo) -> dict[str, Any]:
    r.update_run(run_id, body.name, body.description)
    if body.experiment_id is not None:
        r.move_run(run_id, body.experiment_id)
    return _out(r.get_run(run_id))


@router.post("/runs/{run_id}/end")
def end_run(run_id: TextPath, body: EndIn, r: Repo) -> dict[str, str]:
    r.end_run(run_id, body.status)
    return {"status": body.status.value}


@router.post("/heartbeat", responses=error_responses(404))
def heartbeat(body: HeartbeatIn, r: Repo) -> dict[str, int]:
    r.heartbeat(body.run_ids)
    return {"runs": len(body.run_ids)}


@router.post("/runs/{run_id}/delete")
def delete_run(run_id: TextPath, r: Repo) -> dict[str, str]:
    r.delete_run(run_id)
    return {"status": "deleted"}


@router.post("/runs/{run_id}/restore")
def restore_run(run_id: TextPath, r: Repo) -> dict[str, str]:
    r.restore_run(run_id)
    return {"status": "active"}


# ---------------------------------------------------------------- params, tags, metrics
@router.post("/runs/{run_id}/params", responses=error_responses(409))
def log_params(run_id: TextPath, r: Repo, params: Annotated[Params, Body(embed=True)]) -> dict[str, int]:
    for key in params:
        check_key(key, "param key")
    r.log_params(run_id, params)
    return {"logged": len(params)}


@router.post("/runs/{run_id}/tags")
def set_tags(run_id: TextPath, r: Repo, tags: Annotated[RunTags, Body(embed=True)]) -> dict[str, int]:
    for key in tags:
        check_key(key, "tag key")
    r.set_tags(run_id, tags)
    return {"set": len(tags)}


class MetricBatch(BaseModel):
    """Points column-wise: the i-th point is (run_ids[i], keys[i], values[i], steps[i], timestamps[i])."""

    # Full run ids only: the points go to the store in one COPY, which no text check sits in front of.
    run_ids: list[Annotated[str, Field(pattern="^[0-9a-f]{32}$")]]
    keys: list[_schema.Key]
    values: list[float | Annotated[str, Field(pattern="^(NaN|Infinity|-Infinity)$")]]
    steps: list[Int64]
    timestamps: list[Int64]
    batch_id: str | None = Field(default=None, pattern="^[A-Za-z0-9_.:-]{1,64}$",
                                 description="A key the client picks per batch: a retry with the same key "
                                             "is not stored again.")


@router.post("/metrics/batch", responses=error_responses(404))
def log_metrics(body: MetricBatch, r: Repo) -> dict[str, int]:
    n = len(body.run_ids)
    if not (len(body.keys) == len(body.values) == len(body.steps) == len(body.timestamps) == n):
        raise InvalidInputError(field="metrics", value=n, expected="run_ids, keys, values, steps and timestamps "
                                                                   "of the same length")
    for key in set(body.keys):
        check_key(key, "metric key")
    rows = list(zip(body.run_ids, body.keys, [float_in(v) for v in body.values], body.steps, body.timestamps,
                    strict=True))
    r.log_metrics(rows, batch_id=body.batch_id)
    return {"logged": n}


@router.get("/runs/{run_id}/metrics/{key}/history")
def metric_history(run_id: TextPath, key: TextPath, r: Repo,
                   max_points: Annotated[int | None, Query(ge=4, le=1_000_000)] = None) -> dict[str, Any]:
    points = r.metric_history(run_id, key, max_points)
    return {"key": key, "steps": [p.step for p in points], "timestamps": [p.timestamp for p in points],
            "values": [float_out(p.value) for p in points]}


# ---------------------------------------------------------------- datasets
class DatasetIn(BaseModel):
    dataset_id: IdText = Field(min_length=1, max_length=32)
    name: ShortText = Field(min_length=1, max_length=256)
    digest: DigestText = Field(min_length=1, max_length=64)
    rows: Int64 | None = None
    schema_: dict[str, str] = Field(default={}, alias="schema")
    source: SourceText = Field(default="", max_length=10_000)
    created: Int64
    context: Key = "train"


@router.post("/runs/{run_id}/inputs")
def log_input(run_id: TextPath, body: DatasetIn, r: Repo) -> dict[str, Any]:
    dataset = Dataset(dataset_id=body.dataset_id, name=body.name, digest=body.digest, rows=body.rows,
                      schema=body.schema_, source=body.source, created=body.created)
    return _out(r.log_input(run_id, dataset, body.context))


@router.get("/runs/{run_id}/inputs")
def list_inputs(run_id: TextPath, r: Repo) -> list[dict[str, Any]]:
    return [{"dataset": _out(d), "context": c} for d, c in r.list_inputs(run_id)]


@router.get("/datasets/{digest}/runs")
def runs_with_dataset(digest: TextPath, r: Repo, request: Request) -> list[str]:
    """The runs that used the dataset, among those the caller may see."""
    found = r.runs_with_dataset(digest)
    return keep_visible(found, lambda run_id: run_id, visible_runs(request, found))


# ---------------------------------------------------------------- artifacts
@router.put("/runs/{run_id}/artifacts/{path:path}", status_code=201,
            responses=error_responses(413))
async def put_artifact(run_id: TextPath, path: _schema.PlainPath, request: Request, response: Response, r: Repo,
                       upload: UploadQuery = None, offset: OffsetQuery = None, size: OffsetQuery = None,
                       sha256: Sha256Query = None) -> Any:
    """Store the request body as an artifact: streamed to a temporary file (never held in memory), bounded by
    ``max_artifact_bytes`` (413), then handed to the artifact store. This route bounds its own body: the server's
    general request limit is for JSON and does not apply here.

    A large file goes in chunks that survive a broken connection: each request carries ``upload`` (an id of 32
    hex digits the client makes), the chunk's ``offset``, the file's ``size`` and ``sha256``. The answer is 200
    with how many bytes the server holds (``received``) until the last chunk, then 201 with the artifact; a chunk
    sent again or out of order is not appended, so the client goes on from ``received``."""
    check_artifact_path(path)
    limit = request.app.state.settings.max_artifact_bytes
    if upload is not None or offset is not None or size is not None or sha256 is not None:
        if upload is None or offset is None or size is None or sha256 is None:
            raise InvalidInputError(field="upload", value=upload, expected="upload, offset, size and sha256 together "
                                                                          "(a chunk of a large file), or none of them")
        body = await read_chunk(request, offset, size, limit)
        if not isinstance(body, bytes):
            return body
        found = await run_in_threadpool(_take_chunk, request, r, run_id, path, _Chunk(upload, offset, size, sha256),
                                        body)
        if "received" in found:
            response.status_code = 200
        return found
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(limit, int(declared))
    spool = Path(request.app.state.settings.home, "tmp")  # beside the stores, not a /tmp that may live in memory
    spool.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="upload-", dir=spool) as tmp:
        target = Path(tmp) / "upload"
        received = await _receive(request, target, limit)
        if received is None:
            return _too_large(limit, None)
        artifact = await run_in_threadpool(r.put_artifact, run_id, path, target)
    if artifact.sha256 != received:  # the store must hold what came over the wire
        raise BackendError(f"Artifact '{path}' changed on its way to the store: received sha256 {received}, "
                           f"stored {artifact.sha256}. Upload it again.")
    return _out(artifact)


UploadQuery = Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$")]
OffsetQuery = Annotated[int | None, Query(ge=0, le=2**53)]
Sha256Query = Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$")]


@dataclasses.dataclass(frozen=True, slots=True)
class _Chunk:
    upload: str
    offset: int
    size: int
    sha256: str


def _take_chunk(request: Request, r: SqlTrackingRepository, run_id: str, path: str, chunk: _Chunk,
                body: bytes) -> dict[str, Any]:
    """Append one chunk; once the file is whole and its sha256 is the one announced, store it as the artifact."""
    r.get_run(run_id)  # 404 before a byte is staged for a run that does not exist
    # named by the upload and by what it becomes, so that no other run or path can append to it
    target = hashlib.sha256(f"{run_id}\0{path}".encode()).hexdigest()
    staging = staging_folder(request.app.state.settings.home) / f"{target}.{chunk.upload}"
    received = append_at(staging, chunk.offset, body)
    if received < chunk.size:
        return {"received": received}
    try:
        actual = file_sha256(staging)
        if actual != chunk.sha256:
            raise DataIntegrityError(path=path, expected=chunk.sha256, actual=actual)
        artifact = r.put_artifact(run_id, path, staging)
    finally:
        staging.unlink(missing_ok=True)
    if artifact.sha256 != chunk.sha256:
        raise BackendError(f"Artifact '{path}' changed on its way to the store: received sha256 {chunk.sha256}, "
                           f"stored {artifact.sha256}. Upload it again.")
    return _out(artifact)


async def _receive(request: Request, target: Path, limit: int) -> str | None:
    """Write the body to ``target`` chunk by chunk, hashing as it goes; its sha256, or None past ``limit``."""
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _too_large(limit: int, declared: int | None) -> JSONResponse:
    sent = f"{declared} bytes" if declared is not None else f"more than {limit} bytes"
    message = (f"The artifact is too large: {sent}, and this server takes at most {limit} bytes per artifact "
               "(setting max_artifact_bytes, MLOOP_MAX_ARTIFACT_BYTES).")
    return JSONResponse({"error_code": "REQUEST_TOO_LARGE", "message": message, "field": "body"}, status_code=413,
                        headers={"connection": "close"})  # the rest of the body is not read


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(run_id: TextPath, r: Repo, prefix: _schema.PathPrefixQuery = "") -> list[dict[str, Any]]:
    return [_out(a) for a in r.list_artifacts(run_id, prefix)]


# the file's bytes, typed by its name (text/plain, image/png, ...; application/octet-stream when unknown)
_FILE = {200: {"description": "The file's bytes",
               "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}}


@router.get("/runs/{run_id}/artifacts/{path:path}", response_class=FileResponse,
            responses={**_FILE, **error_responses(404)})
def get_artifact(run_id: TextPath, path: _schema.PlainPath, r: Repo) -> FileResponse:
    check_artifact_path(path)
    listed = r.list_artifacts(run_id, path)
    if not any(a.path == path for a in listed):
        # nothing to download is a 404, as for a run that does not exist: whether a path names a file is the
        # run's state, not the request's form
        folder = any(a.path.startswith(path + "/") for a in listed)
        raise NotFoundError(f"Run '{run_id}' has no file artifact '{path}'"
                            + (" (it is a folder: list it to download its files)." if folder else "."), field="path")
    tmp = tempfile.mkdtemp()
    target = Path(tmp) / "download"
    r.get_artifact(run_id, path, target)
    import shutil

    return FileResponse(target, filename=Path(path).name,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


@router.delete("/runs/{run_id}/artifacts/{path:path}")
def delete_artifact(run_id: TextPath, path: _schema.PlainPath, r: Repo) -> dict[str, int]:
    check_artifact_path(path)
    return {"deleted": r.delete_artifact(run_id, path)}


# ---------------------------------------------------------------- search and retention
class SearchIn(BaseModel):
    experiment_ids: list[Annotated[str, Field(max_length=32)]] = []
    filter: str = Field(default="", max_length=10_000)
    order_by: list[Annotated[str, Field(max_length=300)]] | None = None
    limit: int | None = Field(default=None, strict=True, ge=1, le=1_000_000)
    include_deleted: StrictBool = False


@router.post("/runs/search", responses=error_responses(404))
def search_runs(body: SearchIn, r: Repo, request: Request) -> dict[str, Any]:
    """Runs matching the filter, in the experiments the caller may see (scoped in the query: ``limit`` holds)."""
    experiments = experiments_for_search(request, body.experiment_ids)
    frame = r.search_runs(experiments, body.filter, body.order_by, body.limit, body.include_deleted)
    return frame_out(frame)


class PurgeIn(BaseModel):
    older_than_ms: Int64
    # `mloop gc` through the server: also the prediction log's days past retention (null: the server's setting)
    predictions: StrictBool = False
    prediction_log_retention_days: float | None = Field(default=None, ge=0, le=100_000, strict=True)  # not true


@router.post("/gc")
def purge(body: PurgeIn, r: Repo, request: Request) -> dict[str, int | float]:
    """Purge what was deleted before ``older_than_ms``; with ``predictions``, the old prediction log days too."""
    result: dict[str, int | float] = dict(r.purge(body.older_than_ms))
    if body.predictions:
        from mloop.serving.predlog import compact_predictions, purge_predictions

        settings = request.app.state.settings
        days = body.prediction_log_retention_days
        purged = purge_predictions(settings, retention_days=days)
        result |= {"prediction_days": purged["days"], "prediction_files": purged["files"],
                   "prediction_compacted": compact_predictions(settings)["compacted"],
                   "prediction_retention_days": settings.prediction_log_retention_days if days is None else days}
    return result
