"""Where an MLflow artifact path lives in mloop's stores (the mapping is written down in ``artifacts``).

A path that reaches the proxy is hostile: it is checked as a relative path (no ``..``, no absolute path, no NUL,
no encoded ``%2e%2e``) before it is split, and every part of it that becomes a key is checked again by the blob
store, which also refuses a symbolic link out of its root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mloop._util.names import check_relative_path
from mloop.server.mlflow._protocol import MlflowError

RUN_ID = re.compile(r"[0-9a-f]{32}")
LOGGED_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
MODELS_STORAGE = re.compile(r"[0-9a-f]{32}")  # a registered version's own copy: models/<uuid hex>
MAX_PATH = 2048


@dataclass(frozen=True, slots=True)
class Place:
    """An artifact location: a run's artifact (``run_id`` set: the run's table lists it) or a plain blob key.

    ``rel`` is the path under the root (``""``: the root itself); ``writable`` is False for a registered
    version's files, which are immutable once registered.
    """

    kind: str  # "run" | "logged_model" | "version"
    root: str  # the blob key of the root: runs/<id>/artifacts, logged-models/<id>/artifacts, models/<uuid>
    rel: str
    run_id: str | None = None
    writable: bool = True

    @property
    def key(self) -> str:
        return f"{self.root}/{self.rel}" if self.rel else self.root

    def child(self, rel: str) -> Place:
        return Place(self.kind, self.root, rel, self.run_id, self.writable)


def _clean(path: str) -> str:
    if not isinstance(path, str) or len(path) > MAX_PATH:
        raise MlflowError(f"path: the artifact path is longer than {MAX_PATH} characters.")
    stripped = path.strip("/")
    if not stripped:
        return ""
    try:
        return check_relative_path(stripped, "path", max_length=MAX_PATH)
    except Exception as exc:  # the mloop error names the path; say it in MLflow's words
        raise MlflowError(f"path: '{path}' is not a relative path inside an artifact root (no '..', no absolute "
                          "path, no NUL, no encoded '..').") from exc


def resolve(path: str) -> Place | None:
    """The place of an artifact path such as ``<experiment>/<run_id>/artifacts/model/MLmodel``.

    None for a path above any root (``<experiment>`` or ``<experiment>/<run_id>``): nothing is stored there.
    MlflowError when the path is unsafe or names no known kind of root.
    """
    parts = _clean(path).split("/") if path.strip("/") else []
    if len(parts) >= 2 and parts[0] == "registry" and parts[1] == "models":
        if len(parts) < 3 or not MODELS_STORAGE.fullmatch(parts[2]):
            return None if len(parts) < 3 else _unknown(path)
        return Place("version", f"models/{parts[2]}", "/".join(parts[3:]), writable=False)
    if len(parts) < 3:
        return None
    if parts[1] == "models" and LOGGED_MODEL_ID.fullmatch(parts[2]):
        if len(parts) < 4:
            return None
        if parts[3] != "artifacts":
            return _unknown(path)
        return Place("logged_model", f"logged-models/{parts[2]}/artifacts", "/".join(parts[4:]))
    if RUN_ID.fullmatch(parts[1]) and parts[2] == "artifacts":
        return Place("run", f"runs/{parts[1]}/artifacts", "/".join(parts[3:]), run_id=parts[1])
    return _unknown(path)


def _unknown(path: str) -> Place:
    raise MlflowError(f"path: '{path}' names no artifact root of this server; expected "
                      "<experiment_id>/<run_id>/artifacts/<path>, <experiment_id>/models/<model_id>/artifacts/<path> "
                      "or registry/models/<id>/<path>.")


def run_location(experiment_id: str, run_id: str) -> str:
    """The ``mlflow-artifacts:`` URI of a run's artifact root."""
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def logged_model_location(experiment_id: str, model_id: str) -> str:
    """The ``mlflow-artifacts:`` URI of a logged model's artifact root."""
    return f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"


def storage_location(storage: str, experiment_id: str = "0") -> str:
    """The ``mlflow-artifacts:`` URI of a registered version's storage key (``runs/<id>/artifacts/<p>``,
    ``logged-models/<id>/artifacts/<p>`` or ``models/<uuid>``)."""
    parts = storage.split("/")
    if parts[0] == "runs" and len(parts) >= 3:
        return f"{run_location(experiment_id, parts[1])}/{'/'.join(parts[3:])}".rstrip("/")
    if parts[0] == "logged-models" and len(parts) >= 3:
        return f"{logged_model_location(experiment_id, parts[1])}/{'/'.join(parts[3:])}".rstrip("/")
    return f"mlflow-artifacts:/registry/{storage}"
