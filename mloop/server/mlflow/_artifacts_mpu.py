"""Multipart uploads through the proxy: the mlflow client splits a large file into parts, asks ``mpu/create`` for
one upload URL per part, PUTs the parts (in parallel) and calls ``mpu/complete``.

The part URLs point back at this server (``mpu/parts/<upload_id>/<n>``); the upload id is 128 random bits, so it
doubles as the capability to write that upload. Parts wait in the server's spool folder; ``complete`` checks each
part's ETag (its sha256), joins them in order and stores the file like a plain upload. Every part and the whole
file are bounded by ``max_artifact_bytes``, the number of parts by ``MAX_PARTS``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mloop.server.api.tracking import repo
from mloop.server.mlflow import _artifacts_store as store
from mloop.server.mlflow._protocol import MlflowError, MlflowRoute
from mloop.server.mlflow.artifacts import place_of, receive_bounded, spool_dir, too_large
from mloop.tracking._sql import SqlTrackingRepository

router = APIRouter(route_class=MlflowRoute, tags=["mlflow-artifacts"])
Repo = Annotated[SqlTrackingRepository, Depends(repo)]
MAX_PARTS = 10_000
STALE_SECONDS = 24 * 3600  # an upload neither completed nor aborted for a day is abandoned: its parts go
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
FileName = Annotated[str, Field(min_length=1, max_length=1024)]


class CreateIn(BaseModel):
    path: FileName
    num_parts: int = Field(default=1, ge=1, le=MAX_PARTS)


class PartIn(BaseModel):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(default="", max_length=200)
    url: str = Field(default="", max_length=4096)


class CompleteIn(BaseModel):
    path: FileName
    upload_id: str = Field(max_length=64)
    parts: list[PartIn] = Field(default_factory=list, max_length=MAX_PARTS)


class AbortIn(BaseModel):
    path: FileName
    upload_id: str = Field(max_length=64)


def _target(folder: str, file_name: str) -> str:
    # clients before 3.18 sent the local file's full path: only its name counts
    name = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{folder.strip('/')}/{name}"


def _upload_dir(request: Request, upload_id: str) -> Path:
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise MlflowError(f"upload_id: '{upload_id[:64]}' is not an upload id this server gave out.",
                          code="RESOURCE_DOES_NOT_EXIST", status=404)
    folder = spool_dir(request) / "mpu" / upload_id
    if not folder.is_dir():
        raise MlflowError(f"upload_id: no multipart upload '{upload_id}' is open (completed, aborted or never "
                          "created).", code="RESOURCE_DOES_NOT_EXIST", status=404)
    return folder


@router.post("/mpu/create/{path:path}")
def create(path: str, body: CreateIn, request: Request) -> dict[str, Any]:
    target = _target(path, body.path)
    store.require_upload(place_of(target))
    _drop_stale(spool_dir(request) / "mpu")
    upload_id = secrets.token_hex(16)
    folder = spool_dir(request) / "mpu" / upload_id
    folder.mkdir(parents=True)
    (folder / "upload.json").write_text(json.dumps({"target": target, "num_parts": body.num_parts}))
    base = str(request.url).split("/mpu/create/", 1)[0]  # this server as the client reached it
    return {"upload_id": upload_id,
            "credentials": [{"url": f"{base}/mpu/parts/{upload_id}/{n}", "part_number": n, "headers": {}}
                            for n in range(1, body.num_parts + 1)]}


def _drop_stale(root: Path) -> None:
    """Remove the parts of uploads abandoned for ``STALE_SECONDS``, so a client that never completes cannot fill
    the disk over time."""
    if not root.is_dir():
        return
    horizon = time.time() - STALE_SECONDS
    for folder in root.iterdir():
        if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < horizon:
            shutil.rmtree(folder, ignore_errors=True)


@router.put("/mpu/parts/{upload_id}/{part_number}")
async def upload_part(upload_id: str, part_number: int, request: Request) -> Any:
    folder = _upload_dir(request, upload_id)
    plan = json.loads((folder / "upload.json").read_text())
    if not 1 <= part_number <= plan["num_parts"]:
        raise MlflowError(f"part_number: {part_number} is outside 1..{plan['num_parts']} of this upload.")
    received = await receive_bounded(request, folder / f"part-{part_number}")
    if not isinstance(received, str):
        return received
    if sum(p.stat().st_size for p in folder.glob("part-*")) > request.app.state.settings.max_artifact_bytes:
        shutil.rmtree(folder, ignore_errors=True)
        return too_large(request.app.state.settings.max_artifact_bytes)
    return Response(status_code=200, headers={"ETag": received})


@router.post("/mpu/complete/{path:path}")
async def complete(path: str, body: CompleteIn, request: Request, r: Repo) -> dict[str, Any]:
    folder = _upload_dir(request, body.upload_id)
    plan = json.loads((folder / "upload.json").read_text())
    if plan["target"] != _target(path, body.path):
        raise MlflowError(f"path: upload '{body.upload_id}' was created for '{plan['target']}', not "
                          f"'{_target(path, body.path)}'.")
    numbers = sorted(p.part_number for p in body.parts)
    if numbers != list(range(1, plan["num_parts"] + 1)):
        raise MlflowError(f"parts: expected parts 1..{plan['num_parts']} once each, got {numbers[:20]}.")
    joined = folder / "joined"
    await run_in_threadpool(_join, folder, body.parts, joined)
    try:
        await run_in_threadpool(store.put, r, place_of(plan["target"]), joined)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {}


def _join(folder: Path, parts: list[PartIn], joined: Path) -> None:
    """Concatenate the parts in order into ``joined``, each checked against the ETag its upload answered."""
    with joined.open("wb") as out:
        for part in sorted(parts, key=lambda p: p.part_number):
            source = folder / f"part-{part.part_number}"
            if not source.is_file():
                raise MlflowError(f"parts: part {part.part_number} was never uploaded.")
            digest = hashlib.sha256()
            with source.open("rb") as chunks:
                while chunk := chunks.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if part.etag and part.etag.strip('"') != digest.hexdigest():
                raise MlflowError(f"parts: part {part.part_number} holds other bytes than its ETag says; "
                                  "upload it again.")


@router.post("/mpu/abort/{path:path}")
def abort(path: str, body: AbortIn, request: Request) -> dict[str, Any]:
    shutil.rmtree(_upload_dir(request, body.upload_id), ignore_errors=True)
    return {}
