"""Registering a model version from any source the mlflow client sends: ``models:/m-<id>`` (a logged model),
``runs:/<run_id>/<path>``, an ``mlflow-artifacts:`` URI (or the proxy's http URL), or ``models:/<name>/<version>``.

A folder that already is an mloop model under a run is registered in place, like ``mloop``'s own ``runs:/``
registrations. Any other folder (an MLflow model: ``MLmodel`` beside its files) is copied into a private folder,
given mloop's manifest (``mloop.registry.mlflow_format``), and registered from there, so the version owns an
immutable copy and loads with mloop's rules (a pickle only with ``trusted=True``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from mloop.registry import RegistryClient
from mloop.registry.entities import ModelVersion
from mloop.registry.mlflow_format import MLMODEL, is_mlflow_model, mloop_manifest
from mloop.registry.packaging import MANIFEST
from mloop.server.mlflow import _models_logged as logged
from mloop.server.mlflow._artifacts_paths import resolve
from mloop.server.mlflow._models_shapes import MODEL_ID_TAG
from mloop.server.mlflow._protocol import MlflowError

_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})/(?P<path>.+)$")
_LOGGED = re.compile(r"^models:/(?P<id>m-[0-9a-f]{32})/?$")
_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d{1,9})/?$")
_PROXY_URL = re.compile(r"^https?://[^/]+(?:/[^?#]*)?/api/2\.0/mlflow-artifacts/artifacts/(?P<path>[^?#]+)$")


def storage_of(registry: RegistryClient, source: str, model_id: str | None) -> tuple[str, str | None]:
    """(storage key of the model's files, the run that made them) for an MLflow source URI."""
    if model_id or _LOGGED.match(source):
        record = logged.get(registry.blobs, model_id or _LOGGED.match(source)["id"])  # type: ignore[index]
        return f"logged-models/{record['model_id']}/artifacts", record.get("source_run_id") or None
    if match := _RUNS.match(source):
        place = resolve(f"0/{match['run']}/artifacts/{match['path']}")
        return place.key if place else "", match["run"]  # type: ignore[union-attr]
    if match := _VERSION.match(source):
        found = registry.get_version(match["name"], int(match["version"]))
        return found.storage, found.run_id
    path = source.removeprefix("mlflow-artifacts:") if source.startswith("mlflow-artifacts:") else None
    if path is None and (match := _PROXY_URL.match(source)):
        path = match["path"]
    place = resolve(path) if path is not None else None
    if place is None or not place.rel and place.kind == "run":
        raise MlflowError(f"source: '{source[:300]}' is not a model this server holds; expected models:/<model_id>, "
                          "runs:/<run_id>/<path>, models:/<name>/<version> or an mlflow-artifacts: URI.")
    return place.key, place.run_id


def register(registry: RegistryClient, name: str, source: str, *, model_id: str | None, run_id: str | None,
             description: str, tags: dict[str, str]) -> ModelVersion:
    """A new version of the existing model ``name`` from the files ``source`` names."""
    storage, made_by = storage_of(registry, source, model_id)
    run_id = run_id or made_by
    if model_id or _LOGGED.match(source):
        tags = {**tags, MODEL_ID_TAG: model_id or _LOGGED.match(source)["id"]}  # type: ignore[index]
    if storage.startswith("runs/") and registry.blobs.exists(f"{storage}/{MANIFEST}"):
        run, _, path = storage.removeprefix("runs/").partition("/artifacts/")
        return registry.register(name, f"runs:/{run}/{path}", description=description, tags=tags, create=False)
    with tempfile.TemporaryDirectory(prefix="mlflow-model-") as tmp:
        folder = Path(tmp, "model")
        _copy(registry, storage, folder)
        if is_mlflow_model(folder):
            mloop_manifest(folder, run_id)
        elif not (folder / MANIFEST).is_file():
            raise MlflowError(f"source: '{source[:300]}' holds neither an {MLMODEL} file nor an mloop model.")
        return registry.register(name, folder, description=description, tags=tags, create=False, origin=source,
                                 run_id=run_id)


def _copy(registry: RegistryClient, storage: str, folder: Path) -> None:
    """The files under ``storage`` copied to ``folder`` through the blob store, which keeps every key (and every
    symbolic link) inside its root."""
    keys = registry.blobs.list(storage)
    if not keys:
        raise MlflowError(f"source: no model files at '{storage}'; log the model before registering it.",
                          code="RESOURCE_DOES_NOT_EXIST", status=404)
    for key in keys:
        registry.blobs.get_file(key, folder / key.removeprefix(storage + "/"))
