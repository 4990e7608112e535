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

__all__ = ["LoggedModel", "log_model", "log_model_to_run", "open_registry", "registry_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModel:
    """A model saved under a run (not registered): load it with ``load_model(logged.uri)``."""

    uri: str
    run_id: str
    artifact_path: str
    manifest: dict[str, Any]


_clients: dict[tuple[str | None, ...], RegistryClient] = {}
_lock = threading.Lock()


def open_registry(settings: Settings) -> RegistryClient:
    """The registry the settings point at: an mloop server by URL (``MLOOP_TRACKING_URI``), or the local stores.

    The one place that picks the transport; both answer the same methods.

    >>> import tempfile
    >>> type(open_registry(Settings.load(home=tempfile.mkdtemp()))).__name__
    'RegistryClient'
    """
    if settings.remote:
        from mloop.registry._http import HttpRegistryClient

        return HttpRegistryClient(settings)  # type: ignore[return-value]  # the same surface, over HTTP
    from mloop.registry.client import RegistryClient

    return RegistryClient(settings)


def registry_for(settings: Settings) -> RegistryClient:
    """One registry client per set of stores (or per server and token), shared by the process."""
    if settings.remote:
        from mloop.auth.credentials import token_for

        # a new token (another `mloop login`, MLOOP_TOKEN changed) gets a client that sends it
        key: tuple[str | None, ...] = (settings.tracking_uri, token_for(settings.tracking_uri), settings.home)
    else:
        key = (settings.db_url, settings.artifact_root, settings.user)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = open_registry(settings)
    return client


def log_model(run: RunContext, model: Any, name: str | None = None, *, input_example: Any = None,
              signature: Signature | dict[str, Any] | None = None, artifact_path: str = "model",
              flavor: str | None = None, description: str = "", tags: dict[str, Any] | None = None,
              extra_files: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
              training_data: Any = None, unknown_categories: str | None = None,
              pip_requirements: list[str] | None = None, extra_pip_requirements: list[str] | None = None,
              code_paths: list[str | Path] | None = None, predict_output: str | None = None,
              ) -> ModelVersion | LoggedModel:
    """Save ``model`` under the run at ``artifact_path``; with ``name`` also register it as a new version.

    ``extra_files`` and ``metadata`` travel inside the model folder (see ``save_model``), and so do
    ``training_data`` (which columns may be null), ``unknown_categories`` and the packaging options
    ``pip_requirements``, ``extra_pip_requirements`` and ``code_paths``. Without ``training_data``,
    the schema the run logged for its ``train`` dataset (``run.log_schema``) says which columns may
    be null, when there is one. ``predict_output`` is what the model answers by default ("label",
    "proba" or "both").
    """
    run.flush()  # the version snapshots the run's metrics
    if training_data is None and signature is None:
        training_data = _logged_schema(run)
    return log_model_to_run(run.client.settings, run.run_id, model, name, input_example=input_example,
                            signature=signature, artifact_path=artifact_path, flavor=flavor,
                            description=description, tags=tags, extra_files=extra_files, metadata=metadata,
                            training_data=training_data, unknown_categories=unknown_categories,
                            pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements,
                            code_paths=code_paths, predict_output=predict_output)


def _logged_schema(run: RunContext) -> Any:
    """The schema of the run's ``train`` dataset (``run.log_schema``), or None when it logged none."""
    from mloop.errors import NotFoundError
    from mloop.validation.attach import SCHEMA_TAG, load_run_schema

    if f"{SCHEMA_TAG}.train" not in run.client.get_run(run.run_id).tags:
        return None
    try:
        return load_run_schema(run.client, run.run_id, "train")
    except NotFoundError:
        return None


def log_model_to_run(settings: Settings, run_id: str, model: Any, name: str | None = None, *,
                     input_example: Any = None, signature: Signature | dict[str, Any] | None = None,
                     artifact_path: str = "model", flavor: str | None = None, description: str = "",
                     tags: dict[str, Any] | None = None, extra_files: dict[str, Any] | None = None,
                     metadata: dict[str, Any] | None = None, training_data: Any = None,
                     unknown_categories: str | None = None,
                     pip_requirements: list[str] | None = None, extra_pip_requirements: list[str] | None = None,
                     code_paths: list[str | Path] | None = None, predict_output: str | None = None,
                     ) -> ModelVersion | LoggedModel:
    """``log_model`` for a run by id (finished runs too): the model trained in a run, saved under it afterwards.

    ``pip_requirements`` replaces the inferred requirements, ``extra_pip_requirements`` adds to them, and
    ``code_paths`` copies the user's modules into the model (loading it then needs ``trusted=True``).
    """
    check_artifact_path(artifact_path, "artifact_path")
    registry = registry_for(settings)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        manifest = save_model(model, folder, flavor=flavor, signature=signature,  # type: ignore[arg-type]
                              input_example=input_example, run_id=run_id, artifact_path=artifact_path,
                              extra_files=extra_files, metadata=metadata, training_data=training_data,
                              unknown_categories=unknown_categories, pip_requirements=pip_requirements,
                              extra_pip_requirements=extra_pip_requirements, code_paths=code_paths,
                              predict_output=predict_output)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            registry.runs.put_artifact(run_id, f"{artifact_path}/{path.relative_to(folder).as_posix()}", path)
    uri = f"runs:/{run_id}/{artifact_path}"
    if name is None:
        return LoggedModel(uri=uri, run_id=run_id, artifact_path=artifact_path, manifest=manifest)
    return registry.register(name, uri, description=description, tags=tags)
