"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts``) over mloop's artifact store, so that a client with no
access to the store logs and loads artifacts through the server.

The mlflow client joins an ``mlflow-artifacts:/<location>`` URI onto ``/api/2.0/mlflow-artifacts/artifacts/``.
The locations this server hands out, and where their files live in mloop's stores:

===========================================================  ===================================================
MLflow artifact path                                          mloop
===========================================================  ===================================================
``<experiment_id>/<run_id>/artifacts/<path>``                 run ``<run_id>``'s artifact ``<path>`` (blob key
                                                              ``runs/<run_id>/artifacts/<path>``, listed in the
                                                              run's artifact table like any mloop artifact)
``<experiment_id>/models/<model_id>/artifacts/<path>``        an MLflow 3 logged model's files (blob key
                                                              ``logged-models/<model_id>/artifacts/<path>``)
``registry/models/<id>/<path>``                               a registered version's own copy (``models/<id>``),
                                                              read-only
===========================================================  ===================================================

The experiment part is not used to find the files (a run id is unique on its own); a run's ``artifact_uri`` from the
tracking API is ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``. Uploads are streamed to a temporary
file and bounded by ``max_artifact_bytes``; large files may come in parts (``mpu/*``, see ``_artifacts_mpu``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from mloop.server.api.tracking import _receive, repo
from mloop.server.mlflow import _artifacts_store as store
from mloop.server.mlflow._artifacts_paths import Place, resolve
from mloop.server.mlflow._protocol import MlflowError, MlflowRoute, mlflow_error
from mloop.tracking._sql import SqlTrackingRepository

router = APIRouter(route_class=MlflowRoute, tags=["mlflow-artifacts"])
Repo = Annotated[SqlTrackingRepository, Depends(repo)]


def place_of(path: str) -> Place:
    """The place of ``path``; MlflowError when it is above every artifact root."""
    place = resolve(path)
    if place is None:
        raise MlflowError(f"path: '{path}' is above every artifact root; expected "
                          "<experiment_id>/<run_id>/artifacts/<path>.")
    return place


def spool_dir(request: Request) -> Path:
    """Where uploads wait before the store takes them: beside the stores, not a /tmp that may live in memory."""
    spool = Path(request.app.state.settings.home, "tmp")
    spool.mkdir(parents=True, exist_ok=True)
    return spool


def too_large(limit: int, sent: int | None = None) -> JSONResponse:
    """The 413 answer for a body over ``limit`` bytes; the connection closes since the rest is not read."""
    what = f"{sent} bytes" if sent is not None else f"more than {limit} bytes"
    answer = mlflow_error("REQUEST_LIMIT_EXCEEDED", f"The artifact is too large: {what}, and this server takes at "
                          f"most {limit} bytes per artifact (setting max_artifact_bytes, "
                          "MLOOP_MAX_ARTIFACT_BYTES).", 413)
    answer.headers["connection"] = "close"
    return answer


async def receive_bounded(request: Request, target: Path) -> str | JSONResponse:
    """The body written to ``target``: its sha256, or the 413 answer when it passes ``max_artifact_bytes``."""
    limit = request.app.state.settings.max_artifact_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return too_large(limit, int(declared))
    received = await _receive(request, target, limit)
    return too_large(limit) if received is None else received


@router.put("/artifacts/{path:path}")
async def upload(path: str, request: Request, r: Repo) -> Any:
    place = place_of(path)
    store.require_upload(place)
    if place.run_id is not None:  # a run that is not there is a 404 before a byte of the body is read
        await run_in_threadpool(r.get_run, place.run_id)
    with tempfile.TemporaryDirectory(prefix="upload-", dir=spool_dir(request)) as tmp:
        target = Path(tmp) / "upload"
        received = await receive_bounded(request, target)
        if isinstance(received, JSONResponse):
            return received
        stored = await run_in_threadpool(store.put, r, place, target)
    if stored != received:
        raise MlflowError(f"The artifact '{path}' changed on its way to the store; upload it again.",
                          code="INTERNAL_ERROR", status=500)
    return {}


@router.get("/artifacts")
def list_artifacts(r: Repo, path: Annotated[str, Query(max_length=2048)] = "") -> dict[str, Any]:
    place = resolve(path)
    return {"files": [] if place is None else store.listing(r, place)}


@router.get("/artifacts/{path:path}", response_class=FileResponse)
def download(path: str, r: Repo) -> FileResponse:
    place = place_of(path)
    tmp = tempfile.mkdtemp(prefix="download-")
    target = Path(tmp) / "file"
    try:
        store.fetch(r, place, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(target, filename=Path(place.rel).name, media_type="application/octet-stream",
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


@router.delete("/artifacts/{path:path}")
def delete(path: str, r: Repo) -> dict[str, Any]:
    store.remove(r, place_of(path))
    return {}
