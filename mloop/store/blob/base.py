"""The BlobStore protocol: keys are relative POSIX paths under one root URL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from mloop._util.names import check_relative_path
from mloop.errors import InvalidInputError

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What was stored: the key, its size in bytes and its sha256."""

    key: str
    size: int
    sha256: str


class BlobStore(Protocol):
    """Atomic puts (no half object is ever visible), reads, listing and deletion.

    ``put_content`` is the content-addressed put: ``data`` goes under ``key_of(its sha256)``, and only once.
    """

    root: str

    def put_file(self, key: str, source: str | Path) -> BlobInfo: ...
    def put_bytes(self, key: str, data: bytes) -> BlobInfo: ...
    def put_content(self, data: bytes | memoryview, key_of: Callable[[str], str]) -> BlobInfo: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_file(self, key: str, dest: str | Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def delete(self, prefix: str) -> int: ...
    def url(self, key: str) -> str: ...


MAX_KEY_LENGTH = 2048


def safe_key(key: object, *, root_ok: bool = False) -> str:
    """``key`` when it names a place inside a store's root, else InvalidInputError (field 'path').

    Every key a store touches passes here, so no caller (a manifest, a URL path, a model URI) can reach outside
    the root; the rules are those of ``check_relative_path``. ``root_ok`` admits ``""`` (the root itself, for
    listing) and drops a trailing '/' of a prefix.
    """
    if root_ok and isinstance(key, str):
        key = key.removesuffix("/")
        if key == "":
            return key
    return check_relative_path(key, "path", max_length=MAX_KEY_LENGTH)


def hash_stream(stream: BinaryIO) -> tuple[int, str]:
    """Size and sha256 of a stream read to its end."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def open_blob_store(url: str) -> BlobStore:
    """A BlobStore for a local path / ``file://`` URL or any fsspec URL such as ``s3://bucket/prefix``."""
    if not isinstance(url, str) or not url:
        raise InvalidInputError(field="artifact_root", value=url, expected="a folder path or a URL like s3://bucket/prefix")
    if "://" not in url or url.startswith("file://"):
        from mloop.store.blob.local import LocalBlobStore

        return LocalBlobStore(url.removeprefix("file://"))
    from mloop.store.blob.fsspec import FsspecBlobStore

    return FsspecBlobStore(url)
