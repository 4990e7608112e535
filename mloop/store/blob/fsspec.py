"""Blobs on any fsspec filesystem (``s3://`` through s3fs and friends).

Object stores make a single PUT atomic, so a reader never sees half an object.
S3 options come from the usual AWS environment (``AWS_ACCESS_KEY_ID``, ...);
``MLOOP_S3_ENDPOINT_URL`` points at an S3-compatible server.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mloop._util.optional import require
from mloop._util.redact import redact
from mloop.errors import BackendError, NotFoundError
from mloop.store.blob.base import BlobInfo, hash_stream, safe_key


class FsspecBlobStore:
    """Artifacts on object storage or any other fsspec filesystem."""

    def __init__(self, root: str) -> None:
        fsspec = require("fsspec", extra="s3")
        self.root = root.rstrip("/")
        protocol = root.split("://", 1)[0]
        options: dict[str, Any] = {}
        if protocol in ("s3", "s3a"):
            require("s3fs", extra="s3")
            endpoint = os.environ.get("MLOOP_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                options["client_kwargs"] = {"endpoint_url": endpoint}
        self.fs = fsspec.filesystem(protocol, **options)
        self._base = self.root.split("://", 1)[1]

    def _path(self, key: str, *, root_ok: bool = False) -> str:
        """The object path of ``key``: the one place a key becomes a path, so it is checked here (an object
        store has no symbolic links; refusing '..' and its encoded forms keeps every key under the root)."""
        key = safe_key(key, root_ok=root_ok)
        return f"{self._base}/{key}" if key else self._base

    def put_file(self, key: str, source: str | Path) -> BlobInfo:
        with open(source, "rb") as f:
            size, sha = hash_stream(f)
        try:
            self.fs.put_file(str(source), self._path(key))
        except OSError as exc:
            raise BackendError(f"Could not write '{key}' to {self.root}: {exc}") from exc
        return BlobInfo(key, size, sha)

    def put_bytes(self, key: str, data: bytes) -> BlobInfo:
        self._upload(key, data)
        return BlobInfo(key, len(data), hashlib.sha256(data).hexdigest())

    def put_content(self, data: bytes | memoryview, key_of: Callable[[str], str]) -> BlobInfo:
        sha = hashlib.sha256(data).hexdigest()
        key = key_of(sha)
        if not self.exists(key):  # an object store has no cheap rename: hash first, upload only what is new
            self._upload(key, data)
        return BlobInfo(key, len(data), sha)

    def _upload(self, key: str, data: bytes | memoryview) -> None:
        try:
            self.fs.pipe_file(self._path(key), bytes(data))
        except OSError as exc:
            raise BackendError(f"Could not write '{key}' to {self.root}: {exc}") from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(key)))
        except FileNotFoundError as exc:
            raise NotFoundError(f"No artifact at '{key}' under {self.root}.", field="path") from exc

    def get_file(self, key: str, dest: str | Path) -> None:
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get_file(self._path(key), str(dest))
        except FileNotFoundError as exc:
            raise NotFoundError(f"No artifact at '{key}' under {self.root}.", field="path") from exc

    def exists(self, key: str) -> bool:
        return bool(self.fs.isfile(self._path(key)))

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix, root_ok=True)
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        start = len(self._base.strip("/")) + 1  # some filesystems (memory://) answer with a leading '/'
        return sorted(p.lstrip("/")[start:] for p in found)

    def delete(self, prefix: str) -> int:
        keys = self.list(safe_key(prefix))  # never "" (the whole root)
        if keys:
            self.fs.rm([self._path(k) for k in keys])
            self.fs.invalidate_cache()
        return len(keys)

    def url(self, key: str) -> str:
        # shown to users and stored as run.artifact_uri: never the access keys a root URL may carry
        return redact(f"{self.root}/{safe_key(key)}")
