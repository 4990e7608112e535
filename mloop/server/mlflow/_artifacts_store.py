"""Reading and writing the place an artifact path resolves to: a run's artifacts go through the tracking repository
(so mloop's SDK, CLI and UI list them as they list their own), the other roots are plain keys of the blob store."""

from __future__ import annotations

from pathlib import Path

from mloop.errors import NotFoundError
from mloop.server.mlflow._artifacts_paths import Place
from mloop.server.mlflow._protocol import MlflowError
from mloop.tracking._sql import SqlTrackingRepository


def _read_only(place: Place) -> MlflowError:
    return MlflowError(f"path: '{place.key}' holds a registered model version's files, which never change; "
                       "register a new version instead.", code="PERMISSION_DENIED", status=403)


def require_upload(place: Place) -> None:
    """MlflowError unless a file may be uploaded to ``place`` (checked before a byte of the body is read)."""
    if not place.writable:
        raise _read_only(place)
    if not place.rel:
        raise MlflowError("path: an artifact upload needs a file path under the artifact root.")


def put(repo: SqlTrackingRepository, place: Place, source: Path) -> str:
    """Store ``source`` at ``place``; the sha256 the store holds."""
    require_upload(place)
    if place.run_id is not None:
        return repo.put_artifact(place.run_id, place.rel, source).sha256
    return repo.blobs.put_file(place.key, source).sha256


def files_under(repo: SqlTrackingRepository, place: Place) -> dict[str, int]:
    """``{path under the root: size}`` of every file at or under ``place``."""
    if place.run_id is not None:
        return {a.path: a.size for a in repo.list_artifacts(place.run_id, place.rel)}
    found: dict[str, int] = {}
    for key in repo.blobs.list(place.key):
        rel = key.removeprefix(place.root + "/")
        local = getattr(repo.blobs, "local_path", None)
        found[rel] = local(key).stat().st_size if local is not None else -1
    return found


def listing(repo: SqlTrackingRepository, place: Place) -> list[dict[str, object]]:
    """MLflow's ``files`` of a listing: the direct children of ``place`` (a file lists as nothing)."""
    files = files_under(repo, place)
    prefix = f"{place.rel}/" if place.rel else ""
    children: dict[str, dict[str, object]] = {}
    for path, size in files.items():
        if not path.startswith(prefix):
            continue  # the file itself: MLflow lists a file as empty
        head, _, rest = path[len(prefix):].partition("/")
        if rest:
            children[head] = {"path": head, "is_dir": True}
        else:
            children[head] = {"path": head, "is_dir": False, **({"file_size": size} if size >= 0 else {})}
    return [children[name] for name in sorted(children)]


def fetch(repo: SqlTrackingRepository, place: Place, dest: Path) -> None:
    """Copy the file at ``place`` to ``dest`` (NotFoundError when there is no file there)."""
    if not place.rel or place.rel not in files_under(repo, place):
        raise NotFoundError(f"No artifact file at '{place.key}'.", field="path")
    repo.blobs.get_file(place.key, dest)


def remove(repo: SqlTrackingRepository, place: Place) -> None:
    """Delete the file or folder at ``place``."""
    if not place.writable:
        raise _read_only(place)
    if place.run_id is not None:
        repo.delete_artifact(place.run_id, place.rel)
    elif not place.rel or repo.blobs.delete(place.key) == 0:
        raise NotFoundError(f"No artifact at '{place.key}'.", field="path")
