"""Flow artifacts' bytes through ``mloop server``: ``/api/flows/cas/<sha256>``, content-addressed.

An upload comes in chunks at offsets under an upload id (the client's ``mloop.flows._http_store``). A chunk is
appended to the upload's staging file under the server's home only when it arrived whole (its Content-Length)
and at the offset the file has reached; otherwise the answer says where the upload stands, so a client whose
connection broke sends the rest, not everything. The last chunk publishes the bytes under their sha256 once the
server has checked it. Downloads honour HTTP Range, so a broken one resumes. A sha256 is 64 hex digits, so no
request names anything but a content-addressed key.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from mloop._util.openapi import error_responses
from mloop.errors import DataIntegrityError, NotFoundError
from mloop.flows.artifacts import ArtifactStore
from mloop.flows.task import artifact_store
from mloop.server.api._chunks import append_at, file_sha256, read_chunk, staging_folder

router = APIRouter(prefix="/flows/cas", tags=["flows"])

SHA_PATTERN = r"^[0-9a-f]{64}$"
Sha = Annotated[str, PathParam(pattern=SHA_PATTERN)]
UploadId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")]


def _store(request: Request) -> ArtifactStore:
    return artifact_store(request.app.state.settings.artifact_root)


def _staging(request: Request, sha: str, upload: str) -> Path:
    """The file an upload grows in: under the server's home, named only by hex digits checked above."""
    return staging_folder(request.app.state.settings.home) / f"{sha}.{upload}"


@router.get("/{sha}/uploads/{upload}")
def upload_state(sha: Sha, upload: UploadId, request: Request) -> dict[str, Any]:
    """Whether the server holds these bytes already, and how much of this upload it has received."""
    if _store(request).blobs.exists(ArtifactStore.key(sha)):
        return {"stored": True, "received": 0}
    staging = _staging(request, sha, upload)
    return {"stored": False, "received": staging.stat().st_size if staging.is_file() else 0}


@router.put("/{sha}", responses=error_responses(409, 413))
async def put_chunk(sha: Sha, request: Request, upload: Annotated[str, Query(pattern=r"^[0-9a-f]{32}$")],
                    offset: Annotated[int, Query(ge=0, le=2**53)],
                    size: Annotated[int, Query(ge=0, le=2**53)]) -> Any:
    """Append one chunk (the body, at most 16 MiB) at ``offset`` of an upload of ``size`` bytes; answers whether
    the artifact is stored and how much of the upload the server holds."""
    body = await read_chunk(request, offset, size, request.app.state.settings.max_artifact_bytes)
    if not isinstance(body, bytes):
        return body
    return await run_in_threadpool(_take_chunk, request, sha, upload, offset, size, body)


def _take_chunk(request: Request, sha: str, upload: str, offset: int, size: int, body: bytes) -> dict[str, Any]:
    store = _store(request)
    if store.blobs.exists(ArtifactStore.key(sha)):
        return {"stored": True, "received": size}
    if offset == 0 and len(body) == size:  # the whole artifact at once: no staging file
        _check(sha, hashlib.sha256(body).hexdigest())
        store.put(body)
        return {"stored": True, "received": size}
    staging = _staging(request, sha, upload)
    received = append_at(staging, offset, body)
    if received < size:
        return {"stored": False, "received": received}
    try:
        _check(sha, file_sha256(staging))
        store.blobs.put_file(ArtifactStore.key(sha), staging)
    finally:
        staging.unlink(missing_ok=True)
    return {"stored": True, "received": size}


def _check(expected: str, actual: str) -> None:
    if actual != expected:
        raise DataIntegrityError(path=f"flows/cas/{expected}", expected=expected, actual=actual)


_BYTES = {200: {"description": "The artifact's bytes (206 and the rest from N for ``Range: bytes=N-``)",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.get("/{sha}", responses={**_BYTES, **error_responses(404)}, response_class=FileResponse)
def get_blob(sha: Sha, request: Request) -> FileResponse:
    """The bytes of one artifact (or captured log); a ``Range: bytes=N-`` request gets the rest from N."""
    blobs = _store(request).blobs
    key = ArtifactStore.key(sha)
    if not blobs.exists(key):
        raise NotFoundError(f"No flow artifact with sha256 {sha}.", field="sha256")
    local = getattr(blobs, "local_path", None)
    if local is not None:
        return FileResponse(local(key), media_type="application/octet-stream")
    folder = tempfile.mkdtemp(prefix="mloop-cas-")  # object storage: a local copy, removed once sent
    target = os.path.join(folder, sha)
    blobs.get_file(key, target)
    return FileResponse(target, media_type="application/octet-stream",
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
