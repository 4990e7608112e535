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
from mloop.errors import DataIntegrityError, InvalidInputError, NotFoundError
from mloop.flows.artifacts import ArtifactStore
from mloop.flows.task import artifact_store
from mloop.server.api.tracking import _too_large
from mloop.store.blob.base import CHUNK as READ_CHUNK

router = APIRouter(prefix="/flows/cas", tags=["flows"])

MAX_CHUNK = 16 << 20  # bytes one request may carry; the client sends 8 MiB
SHA_PATTERN = r"^[0-9a-f]{64}$"
Sha = Annotated[str, PathParam(pattern=SHA_PATTERN)]
UploadId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")]


def _store(request: Request) -> ArtifactStore:
    return artifact_store(request.app.state.settings.artifact_root)


def _staging(request: Request, sha: str, upload: str) -> Path:
    """The file an upload grows in: under the server's home, named only by hex digits checked above."""
    return Path(request.app.state.settings.home, "flows", "uploads", f"{sha}.{upload}")


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
    limit = request.app.state.settings.max_artifact_bytes
    if size > limit:  # a value this server does not take (422), not a body too large: nothing was sent yet
        raise InvalidInputError(field="size", value=size,
                                expected=f"at most {limit} bytes (setting max_artifact_bytes)")
    length = _content_length(request)
    if length > MAX_CHUNK:
        return _too_large(MAX_CHUNK, length)
    if offset + length > size:
        raise InvalidInputError(field="offset", value=offset,
                                expected=f"a chunk that ends within the upload's {size} bytes (it has {length})")
    body = await request.body()
    if len(body) != length:  # the connection broke: keep nothing of it
        raise InvalidInputError(field="body", value=len(body), expected=f"the {length} bytes announced")
    return await run_in_threadpool(_take_chunk, request, sha, upload, offset, size, body)


def _content_length(request: Request) -> int:
    text = request.headers.get("content-length")
    if text is None or not text.isdigit():
        raise InvalidInputError(field="Content-Length", value=text,
                                expected="the chunk's length in bytes (chunked transfer encoding is not taken)")
    return int(text)


def _take_chunk(request: Request, sha: str, upload: str, offset: int, size: int, body: bytes) -> dict[str, Any]:
    store = _store(request)
    if store.blobs.exists(ArtifactStore.key(sha)):
        return {"stored": True, "received": size}
    if offset == 0 and len(body) == size:  # the whole artifact at once: no staging file
        _check(sha, hashlib.sha256(body).hexdigest())
        store.put(body)
        return {"stored": True, "received": size}
    staging = _staging(request, sha, upload)
    staging.parent.mkdir(parents=True, exist_ok=True)
    received = staging.stat().st_size if staging.is_file() else 0
    if offset != received:  # a chunk sent again, or one ahead of a lost one: say where the upload is
        return {"stored": False, "received": received}
    with staging.open("ab") as out:
        out.write(body)
    received += len(body)
    if received < size:
        return {"stored": False, "received": received}
    try:
        _check(sha, _file_sha256(staging))
        store.blobs.put_file(ArtifactStore.key(sha), staging)
    finally:
        staging.unlink(missing_ok=True)
    return {"stored": True, "received": size}


def _check(expected: str, actual: str) -> None:
    if actual != expected:
        raise DataIntegrityError(path=f"flows/cas/{expected}", expected=expected, actual=actual)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
