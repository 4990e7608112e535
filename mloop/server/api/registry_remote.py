"""The rest of the registry's REST API, under ``/api/registry``: what a client reaching the registry only through
the server needs besides the routes in ``registry.py`` (the version's files, tag removal, one environment, the
whole deployment history, undeploy, one approval request, webhook removal, every version).

Permissions come from the same RULES lines as the rest of ``/api/registry`` (files and reads: viewer; tags:
editor; environments: maintainer; webhooks: server admin).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from mloop._util.names import check_artifact_path
from mloop._util.openapi import error_responses
from mloop.errors import NotFoundError
from mloop.registry.packaging import MANIFEST
from mloop.server.api._schema import OptionalTextQuery, PlainPath, TextPath
from mloop.server.api.registry import IdPath, Limit, _out, _registry

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


@router.delete("/models/{name}/tags/{key}", status_code=204)
def delete_model_tag(name: TextPath, key: TextPath, request: Request) -> None:
    _registry(request).delete_tag(name, key)


@router.delete("/models/{name}/versions/{version}/tags/{key}", status_code=204)
def delete_version_tag(name: TextPath, version: IdPath, key: TextPath, request: Request) -> None:
    _registry(request).delete_tag(name, key, version)


@router.get("/environments/{env}", responses=error_responses(404))
def get_environment(env: TextPath, request: Request) -> Any:
    return _registry(request).environments.get(env)


@router.delete("/environments/{env}/deployments/{name}", status_code=204, responses=error_responses(404))
def undeploy(env: TextPath, name: TextPath, request: Request,
             reason: Annotated[str, Query(max_length=10_000)] = "") -> None:
    _registry(request).environments.undeploy(name, env, reason)


@router.get("/deployments")
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
