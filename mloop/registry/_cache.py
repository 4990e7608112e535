"""A local copy of model files kept in a remote artifact store (S3 and the like)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from mloop._util.names import check_artifact_path
from mloop.errors import NotFoundError
from mloop.store.blob import BlobStore


def download(blobs: BlobStore, storage: str, cache_root: Path) -> Path:
    """Download every file under ``storage`` once into the cache and return the folder.

    The copy appears atomically (a temporary folder renamed into place), so concurrent
    loaders never see half a model.
    """
    target = cache_root / hashlib.sha256(f"{blobs.url(storage)}".encode()).hexdigest()[:32]
    if target.is_dir():
        return target
    keys = [k for k in blobs.list(storage) if k.startswith(storage.rstrip("/") + "/")]
    if not keys:
        raise NotFoundError(f"No model files at '{storage}'; they were deleted or never stored.", field="uri")
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_root, prefix=".tmp-"))
    try:
        for key in keys:  # an object store holds whatever names its writers chose: each must stay in tmp
            blobs.get_file(key, tmp / check_artifact_path(key[len(storage.rstrip("/")) + 1:], "files"))
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():
            raise
    return target
