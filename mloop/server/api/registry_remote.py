"""The rest of the registry's REST API, under ``/api/registry``: what a client reaching the registry only through
the server needs besides the routes in ``registry.py`` (the version's files, a model folder uploaded and registered,
tag removal, one environment, the whole deployment history, undeploy, one approval request, webhook removal,
every version).

Permissions come from the same RULES lines as the rest of ``/api/registry`` (files and reads: viewer; uploads and
tags: editor; environments: maintainer; webhooks: server admin).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from pydantic import Field, StrictBool
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from mloop._util.names import PLAIN_PATH_PATTERN, check_artifact_path
from mloop._util.openapi import error_responses
from mloop.errors import BackendError, InvalidInputError, NotFoundError
from mloop.registry.packaging import MANIFEST
from mloop.server.api._schema import Description, OptionalTextQuery, PlainPath, Tags, TextPath
from mloop.server.api.registry import IdPath, Limit, _Body, _out, _registry
from mloop.server.api.tracking import _receive, _too_large
from mloop.server.visibility import guard_rollout_tags

router = APIRouter(prefix="/registry", tags=["registry"])

# the file's bytes, exactly as stored (the client checks them against the manifest's sha256s)
_FILE = {200: {"description": "The file's bytes",
               "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.get("/versions")
def list_all_versions(request: Request) -> Any:
    """Every version of every model, oldest first within each model."""
    return _out(_registry(request).list_versions())


@router.get("/models/{name}/versions/{version}/files/{path:path}", response_class=FileResponse,
            responses={**_FILE, **error_responses(404)})
def version_file(name: TextPath, version: IdPath, path: PlainPath, request: Request) -> FileResponse:
    """One file of the version: its manifest (``mloop-model.yaml``) or a file the manifest lists."""
    check_artifact_path(path, "path")
    registry = _registry(request)
    found = registry.get_version(name, version)
    if path != MANIFEST and path not in registry.manifest(name, version)["files"]:
        raise NotFoundError(f"Version {found.version} of '{name}' has no file '{path}'.", field="path")
    key = f"{found.storage}/{path}"
    local_path = getattr(registry.blobs, "local_path", None)
    if local_path is not None:  # a local store: the file itself, confined to the store's root
        where = local_path(key)
        if not where.is_file():
            raise NotFoundError(f"The file '{path}' of version {found.version} of '{name}' is missing from the "
                                "artifact store.", field="path")
        return FileResponse(where, media_type="application/octet-stream", filename=Path(path).name)
    tmp = tempfile.mkdtemp()
    target = Path(tmp) / "download"
    registry.blobs.get_file(key, target)
    return FileResponse(target, media_type="application/octet-stream", filename=Path(path).name,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


@router.delete("/models/{name}/tags/{key}", status_code=204, responses=error_responses(404))
def delete_model_tag(name: TextPath, key: TextPath, request: Request) -> None:
    guard_rollout_tags(request, name, [key])
    _registry(request).delete_tag(name, key)


@router.delete("/models/{name}/versions/{version}/tags/{key}", status_code=204, responses=error_responses(404))
def delete_version_tag(name: TextPath, version: IdPath, key: TextPath, request: Request) -> None:
    _registry(request).delete_tag(name, key, version)


@router.get("/environments/{env}", responses=error_responses(404))
def get_environment(env: TextPath, request: Request) -> Any:
    return _registry(request).environments.get(env)


@router.delete("/environments/{env}/deployments/{name}", status_code=204, responses=error_responses(404))
def undeploy(env: TextPath, name: TextPath, request: Request,
             reason: Annotated[str, Query(max_length=10_000)] = "") -> None:
    _registry(request).environments.undeploy(name, env, reason)


@router.get("/deployments", responses=error_responses(404))
def deployments(request: Request, env: OptionalTextQuery = None, model: OptionalTextQuery = None,
                limit: Limit = 100) -> Any:
    """Every change of what runs where, newest first (optionally of one environment and/or model)."""
    return _out(_registry(request).environments.history(env, model, limit))


@router.get("/approvals/{request_id}", responses=error_responses(404))
def approval(request_id: IdPath, request: Request) -> Any:
    return _out(_registry(request).environments.request(request_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=error_responses(404))
def remove_webhook(webhook_id: IdPath, request: Request) -> None:
    _registry(request).webhooks.remove(webhook_id)


# ---------------------------------------------------------------- a local model folder, registered through the server
_HEX32 = r"^[0-9a-f]{32}$"
UploadId = Annotated[str, PathParam(pattern=_HEX32)]
_UPLOADS = "uploads"  # where uploaded files wait, in the artifact store, until their version is registered


class UploadedVersionIn(_Body):
    origin: Description  # where the folder was on the client: the source the version records
    run_id: Annotated[str, Field(pattern=_HEX32)] | None = None  # the run that made the model, if any
    description: Description = ""
    tags: Tags = Field(default_factory=dict)
    create: StrictBool = True


@router.put("/uploads/{upload_id}/{path:path}", status_code=201, responses=error_responses(413))
async def upload_file(upload_id: UploadId, path: PlainPath, request: Request) -> Any:
    """One file of a model folder on its way to ```POST /models/{name}/uploads/{upload_id}``: the body, streamed to
    disk and bounded by ``max_artifact_bytes`` (413) like a run artifact."""
    check_artifact_path(path)
    if not re.fullmatch(PLAIN_PATH_PATTERN, path):  # only the names the document promises (no '%', ':', controls)
        raise InvalidInputError(field="path", value=path, expected="a plain relative path like 'model/model.skops'")
    limit = request.app.state.settings.max_artifact_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(limit, int(declared))
    with tempfile.TemporaryDirectory(prefix="upload-", dir=_spool(request)) as tmp:
        received = await _receive(request, Path(tmp) / "upload", limit)
        if received is None:
            return _too_large(limit, None)
        registry = _registry(request)
        await run_in_threadpool(registry.blobs.put_file, f"{_UPLOADS}/{upload_id}/{path}", Path(tmp) / "upload")
    return JSONResponse({"path": path, "sha256": received}, status_code=201)


@router.post("/models/{name}/uploads/{upload_id}", status_code=201, responses=error_responses(404, 409))
def register_uploaded(name: TextPath, upload_id: UploadId, body: UploadedVersionIn, request: Request) -> Any:
    """Register the folder uploaded under ``upload_id`` as a new version (checked against its manifest, as a local
    folder is); the uploaded copy is removed either way."""
    registry = _registry(request)
    prefix = f"{_UPLOADS}/{upload_id}"
    try:
        with tempfile.TemporaryDirectory(dir=_spool(request)) as tmp:
            folder = Path(tmp) / "model"
            keys = [k for k in registry.blobs.list(prefix) if k.startswith(prefix + "/")]
            if not keys:
                raise NotFoundError(f"Nothing was uploaded under '{upload_id}'.", field="upload_id")
            for key in keys:
                registry.blobs.get_file(key, folder / check_artifact_path(key[len(prefix) + 1:], "files"))
            return _out(registry.register(name, folder, description=body.description, tags=body.tags,
                                          create=body.create, origin=body.origin, run_id=body.run_id))
    finally:
        try:
            registry.blobs.delete(prefix)
        except OSError as exc:  # the version is registered (or refused) already; a leftover is only space
            raise BackendError(f"Could not remove the upload '{upload_id}': {exc}") from exc


def _spool(request: Request) -> Path:
    spool = Path(request.app.state.settings.home, "tmp")
    spool.mkdir(parents=True, exist_ok=True)
    return spool
