"""Large bodies in chunks at offsets, for the routes that take files through the server (a run's artifacts,
flow artifacts): a chunk is appended to its upload's staging file only when it arrived whole (its
Content-Length) and at the offset the file has reached. Otherwise the answer says where the upload stands, so a
client whose connection broke sends the rest again, not everything.

>>> import tempfile, pathlib
>>> staging = pathlib.Path(tempfile.mkdtemp()) / "u"
>>> append_at(staging, 0, b"abc"), append_at(staging, 0, b"abc"), append_at(staging, 3, b"de")
(3, 3, 5)
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse

from mloop.errors import InvalidInputError
from mloop.store.blob.base import hash_stream

__all__ = ["MAX_CHUNK", "append_at", "file_sha256", "read_chunk", "staging_folder"]

MAX_CHUNK = 16 << 20  # bytes one request may carry; clients send 8 MiB


def staging_folder(home: str) -> Path:
    """Where uploads in chunks grow on the server (``mloop gc`` removes files untouched for a day)."""
    return Path(home, "uploads")


async def read_chunk(request: Request, offset: int, size: int, limit: int) -> bytes | JSONResponse:
    """The body of a chunk at ``offset`` of an upload of ``size`` bytes, checked against the server's
    ``limit`` per artifact; a JSONResponse (413) when the chunk itself is larger than a request may carry."""
    from mloop.server.api.tracking import _too_large

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
    return body


def _content_length(request: Request) -> int:
    text = request.headers.get("content-length")
    if text is None or not text.isdigit():
        raise InvalidInputError(field="Content-Length", value=text,
                                expected="the chunk's length in bytes (chunked transfer encoding is not taken)")
    return int(text)


def append_at(staging: Path, offset: int, body: bytes) -> int:
    """Append ``body`` to ``staging`` if it starts where the file ends; how many bytes the file holds after."""
    staging.parent.mkdir(parents=True, exist_ok=True)
    received = staging.stat().st_size if staging.is_file() else 0
    if offset != received:  # a chunk sent again, or one ahead of a lost one
        return received
    with staging.open("ab") as out:
        out.write(body)
    return received + len(body)


def file_sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hash_stream(stream)[1]
