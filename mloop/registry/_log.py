"""``run.log_model``: save a model folder as run artifacts and optionally register a version."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop._util.names import check_artifact_path
from mloop.config import Settings
from mloop.registry.entities import ModelVersion
from mloop.registry.packaging import save_model
from mloop.registry.signature import Signature

if TYPE_CHECKING:
    from mloop.registry.client import RegistryClient
    from mloop.tracking.run import RunContext

__all__ = ["LoggedModel", "log_model", "log_model_to_run", "registry_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModel:
    """A model saved under a run (not registered): load it with ``load_model(logged.uri)``."""

    uri: str
    run_id: str
    artifact_path: str
    manifest: dict[str, Any]


_clients: dict[tuple[str, str, str], RegistryClient] = {}
_lock = threading.Lock()


def registry_for(settings: Settings) -> RegistryClient:
    """One RegistryClient per set of stores, shared by the process."""
    from mloop.registry.client import RegistryClient

    key = (settings.db_url, settings.artifact_root, settings.user)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = RegistryClient(settings)
    return client


def log_model(run: RunContext, model: Any, name: str | None = None, *, input_example: Any = None,
              signature: Signature | dict[str, Any] | None = None, artifact_path: str = "model",
              flavor: str | None = None, description: str = "", tags: dict[str, Any] | None = None,
              extra_files: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
              predict_output: str | None = None) -> ModelVersion | LoggedModel:
    """Save ``model`` under the run at ``artifact_path``; with ``name`` also register it as a new version.

    ``extra_files`` and ``metadata`` travel inside the model folder (see ``save_model``); so does
    ``predict_output``, what the model answers by default ("label", "proba" or "both").
    """
    run.flush()  # the version snapshots the run's metrics
    return log_model_to_run(run.client.settings, run.run_id, model, name, input_example=input_example,
                            signature=signature, artifact_path=artifact_path, flavor=flavor,
                            description=description, tags=tags, extra_files=extra_files, metadata=metadata,
                            predict_output=predict_output)


def log_model_to_run(settings: Settings, run_id: str, model: Any, name: str | None = None, *,
                     input_example: Any = None, signature: Signature | dict[str, Any] | None = None,
                     artifact_path: str = "model", flavor: str | None = None, description: str = "",
                     tags: dict[str, Any] | None = None, extra_files: dict[str, Any] | None = None,
                     metadata: dict[str, Any] | None = None, predict_output: str | None = None,
                     ) -> ModelVersion | LoggedModel:
    """``log_model`` for a run by id (finished runs too): the model trained in a run, saved under it afterwards."""
    check_artifact_path(artifact_path, "artifact_path")
    registry = registry_for(settings)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        manifest = save_model(model, folder, flavor=flavor, signature=signature,  # type: ignore[arg-type]
                              input_example=input_example, run_id=run_id, artifact_path=artifact_path,
                              extra_files=extra_files, metadata=metadata, predict_output=predict_output)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            registry.runs.put_artifact(run_id, f"{artifact_path}/{path.relative_to(folder).as_posix()}", path)
    uri = f"runs:/{run_id}/{artifact_path}"
    if name is None:
        return LoggedModel(uri=uri, run_id=run_id, artifact_path=artifact_path, manifest=manifest)
    return registry.register(name, uri, description=description, tags=tags)
