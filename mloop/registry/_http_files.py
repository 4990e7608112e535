"""Model files through ``mloop server``: streamed into a local cache, checked before they appear; a local model
folder streamed up to be registered.

A download lands in a temporary folder beside the cache; it is renamed into place only when every file the
manifest lists is there with its recorded sha256 (``verify_files``, the check the direct path makes), so a
loader never sees half a model or bytes the manifest does not vouch for. Every name the server sends is checked
to stay inside that folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from mloop._util.names import check_artifact_path
from mloop.errors import NotFoundError
from mloop.registry import _models
from mloop.registry.packaging import MANIFEST, parse_manifest, read_manifest, verify_files
from mloop.tracking.entities import Artifact

if TYPE_CHECKING:
    from collections.abc import Callable

    from mloop.registry._http import HttpRegistryClient

__all__ = ["download_run_model", "download_version", "upload_folder"]


def download_version(client: HttpRegistryClient, name: str, version: int, storage: str, cache_root: Path) -> Path:
    """The files of version ``version`` of ``name`` in a local folder (downloaded once per server and storage).

    >>> download_version  # doctest: +ELLIPSIS
    <function download_version at ...>
    """
    files = f"/registry/models/{quote(name, safe='')}/versions/{_models.check_version(version)}/files/"

    def fetch(folder: Path) -> None:
        manifest_path = folder / MANIFEST
        _fetch(client, files + MANIFEST, manifest_path, MANIFEST)
        manifest = parse_manifest(manifest_path.read_bytes(), f"{name} v{version} {MANIFEST}")
        for relative, sha256 in manifest["files"].items():
            check_artifact_path(relative, "files")  # a name from the server is joined to the folder
            _fetch(client, files + quote(relative, safe="/"), folder / relative, relative, sha256)
        verify_files(folder, manifest)  # the direct path's check, on the folder as it will be loaded

    return _cached(client, storage, cache_root, fetch)


def download_run_model(client: HttpRegistryClient, run_id: str, path: str, cache_root: Path) -> Path:
    """The model folder a run logged at ``path`` (``runs:/<run_id>/<path>``), through the tracking artifacts."""
    check_artifact_path(path, "path")

    def fetch(folder: Path) -> None:
        found = [a for a in client.runs.list_artifacts(run_id, path) if a.path.startswith(path + "/")]
        if not any(a.path == f"{path}/{MANIFEST}" for a in found):
            raise NotFoundError(f"Run {run_id} has no model at '{path}' (no {MANIFEST}); "
                                "log one with run.log_model(model, ...).", field="uri")
        for art in found:
            relative = check_artifact_path(art.path[len(path) + 1:], "files")
            # the tracking download checks each file against the sha256 recorded when it was logged
            _fetch(client, f"/runs/{quote(run_id, safe='')}/artifacts/{quote(art.path, safe='/')}", folder / relative,
                   art.path, art.sha256)
        verify_files(folder, parse_manifest((folder / MANIFEST).read_bytes(), f"runs:/{run_id}/{path}"))

    return _cached(client, f"runs/{run_id}/artifacts/{path}", cache_root, fetch)


def upload_folder(client: HttpRegistryClient, folder: Path) -> str:
    """Send a model folder's files to the server (after checking them against its manifest, as the direct path
    does before copying); returns the upload id that ``POST /models/{name}/uploads/{id}`` registers."""
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    upload_id = uuid.uuid4().hex
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = check_artifact_path(path.relative_to(folder).as_posix(), "files")
        with path.open("rb") as stream:  # streamed; a retry rewinds the file
            client.call("PUT", f"/uploads/{upload_id}/{quote(relative, safe='/')}", content=stream)
    return upload_id


def _cached(client: HttpRegistryClient, storage: str, cache_root: Path, fetch: Callable[[Path], None]) -> Path:
    """The cache folder of ``storage`` on this server, filled by ``fetch`` into a temporary folder first."""
    target = cache_root / hashlib.sha256(f"{client.base_url}\n{storage}".encode()).hexdigest()[:32]
    if target.is_dir():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_root, prefix=".tmp-"))
    try:
        fetch(tmp)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():  # another loader may have finished the same download meanwhile
            raise
    return target


def _fetch(client: HttpRegistryClient, url: str, target: Path, path: str, sha256: str = "") -> None:
    """Stream GET ``url`` to ``target`` through the tracking transport's download, which hashes the bytes as they
    arrive and refuses them (DataIntegrityError) when ``sha256`` is given and differs."""
    client.runs._download(url, Artifact(path=path, size=0, sha256=sha256, created=0), target)
