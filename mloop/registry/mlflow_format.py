"""MLflow's model folder (an ``MLmodel`` file beside the flavor's files) read as an mloop model, and an mloop
scikit-learn model described in MLflow's terms, so each side loads the other's models.

An MLflow scikit-learn model is one of three files: ``model.skops`` (skops, MLflow 3's default outside
Databricks), or ``model.pkl`` written by ``pickle`` or ``cloudpickle``. The skops file becomes mloop's
``sklearn`` flavor and loads with mloop's own list of safe types (the ``skops_trusted_types`` that the MLmodel
file offers are ignored: whoever wrote the model wrote that list). A pickle becomes mloop's ``python_function``
flavor, which loads only with ``trusted=True``: unpickling runs whatever code the file holds.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "model.pkl").write_bytes(b"not read here")
>>> _ = (folder / "MLmodel").write_text("flavors:\\n  sklearn:\\n    pickled_model: model.pkl\\n"
...                                     "    serialization_format: cloudpickle\\n    sklearn_version: 1.5.0\\n")
>>> manifest = mloop_manifest(folder)
>>> manifest["flavor"], manifest["flavor_options"]["file"], sorted(manifest["files"])
('python_function', 'model.pkl', ['MLmodel', 'model.pkl'])
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import yaml

from mloop._util.clock import now_ms
from mloop.errors import InvalidInputError
from mloop.registry._code import check_requirements
from mloop.registry.packaging import FORMAT_VERSION, MANIFEST, installed_versions, sha256_file

__all__ = ["MLMODEL", "is_mlflow_model", "mloop_manifest", "write_mlmodel"]

MLMODEL = "MLmodel"
MAX_MLMODEL_BYTES = 1 << 20  # an MLmodel file is a few hundred bytes; it comes from whoever logged the model
MAX_REQUIREMENTS_BYTES = 64 * 1024
# MLflow's column types as mloop's logical types
_COLUMN_TYPES = {"double": "float", "float": "float", "long": "integer", "integer": "integer",
                 "string": "string", "boolean": "boolean", "datetime": "datetime"}
_FORMATS = ("skops", "cloudpickle", "pickle")


def is_mlflow_model(folder: str | Path) -> bool:
    """Whether ``folder`` holds an MLflow model (an ``MLmodel`` file) and no mloop manifest of its own."""
    return (Path(folder) / MLMODEL).is_file() and not (Path(folder) / MANIFEST).is_file()


def read_mlmodel(folder: str | Path) -> dict[str, Any]:
    """The parsed ``MLmodel`` file of ``folder`` (InvalidInputError when it is too large or not a mapping)."""
    path = Path(folder) / MLMODEL
    with path.open("rb") as stream:
        data = stream.read(MAX_MLMODEL_BYTES + 1)
    if len(data) > MAX_MLMODEL_BYTES:
        raise InvalidInputError(field="MLmodel", value=f"{len(data)}+ bytes",
                                expected=f"an MLmodel file of at most {MAX_MLMODEL_BYTES} bytes")
    try:
        parsed = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"The model's MLmodel file is not valid YAML: {exc}", field="MLmodel") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("flavors"), dict):
        raise InvalidInputError(field="MLmodel", value=type(parsed).__name__, expected="a mapping with 'flavors'")
    return parsed


def mloop_manifest(folder: str | Path, run_id: str | None = None) -> dict[str, Any]:
    """Write mloop's manifest into the MLflow model folder ``folder``; returns it.

    Only the scikit-learn flavor is read: InvalidInputError names the flavors the file has otherwise.
    """
    target = Path(folder)
    mlmodel = read_mlmodel(target)
    flavor, options = _flavor_of(mlmodel, target)
    sklearn_version = str(mlmodel["flavors"]["sklearn"].get("sklearn_version") or "")
    manifest = {
        "format_version": FORMAT_VERSION,
        "flavor": flavor,
        "flavor_options": options,
        "signature": _signature_of(mlmodel),
        "input_example": None,
        "python": str((mlmodel["flavors"].get("python_function") or {}).get("python_version")
                      or platform.python_version()),
        "requirements": {"scikit-learn": sklearn_version} if sklearn_version else {},
        "pip_requirements": _requirements(target),
        "code_paths": [],
        "run_id": run_id or mlmodel.get("run_id"),
        "artifact_path": mlmodel.get("artifact_path"),
        "created": now_ms(),
        "metadata": {"mlflow_model_id": mlmodel.get("model_id"), "mlflow_version": mlmodel.get("mlflow_version")},
        "extra_files": [],
        "files": {p.relative_to(target).as_posix(): sha256_file(p)
                  for p in sorted(target.rglob("*")) if p.is_file() and p.name != MANIFEST},
    }
    (target / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))
    return manifest


def _flavor_of(mlmodel: dict[str, Any], folder: Path) -> tuple[str, dict[str, Any]]:
    """mloop's flavor and its options for the model's sklearn flavor."""
    conf = mlmodel["flavors"].get("sklearn")
    if not isinstance(conf, dict):
        raise InvalidInputError(f"mloop reads MLflow models of the sklearn flavor; this one has "
                                f"{sorted(map(str, mlmodel['flavors']))}.", field="MLmodel.flavors",
                                value=sorted(map(str, mlmodel["flavors"])), expected="a 'sklearn' flavor")
    file = conf.get("pickled_model")
    fmt = conf.get("serialization_format", "pickle")
    if fmt not in _FORMATS:
        raise InvalidInputError(field="MLmodel.flavors.sklearn.serialization_format", value=fmt,
                                expected=f"one of {list(_FORMATS)}")
    if not isinstance(file, str) or "/" in file or "\\" in file or not (folder / file).is_file():
        raise InvalidInputError(field="MLmodel.flavors.sklearn.pickled_model", value=file,
                                expected="the name of a file in the model folder")
    if fmt == "skops":
        return "sklearn", {"file": file, "serialization": "skops"}
    return "python_function", {"file": file, "serialization": fmt, "call": "predict"}


def _signature_of(mlmodel: dict[str, Any]) -> dict[str, Any] | None:
    """mloop's signature from MLflow's column-based one; None for a tensor signature or a type mloop lacks."""
    raw = (mlmodel.get("signature") or {}).get("inputs") if isinstance(mlmodel.get("signature"), dict) else None
    try:
        columns = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(columns, list) or not columns:
        return None
    inputs = []
    for col in columns:
        kind = _COLUMN_TYPES.get(col.get("type")) if isinstance(col, dict) else None
        if kind is None or not isinstance(col.get("name"), str):
            return None
        # a float column takes NaN for a missing value whatever MLflow's 'required' says
        inputs.append({"name": col["name"], "type": kind, "nullable": kind == "float" or not col.get("required")})
    return {"input_kind": "frame", "tensor_dtype": None, "inputs": inputs, "outputs": []}


def _requirements(folder: Path) -> list[str] | None:
    """The lines of the model's requirements.txt, when they are plain requirements (None otherwise)."""
    path = folder / "requirements.txt"
    if not path.is_file() or path.stat().st_size > MAX_REQUIREMENTS_BYTES:
        return None
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    try:
        check_requirements("requirements.txt", lines)
    except InvalidInputError:
        return None
    return lines


def write_mlmodel(folder: str | Path, flavor: str, options: dict[str, Any]) -> bool:
    """Describe an mloop sklearn model in ``folder`` with an ``MLmodel`` file, so ``mlflow.pyfunc.load_model``
    and ``mlflow.sklearn.load_model`` load it; False (nothing written) for a model MLflow would not read safely.

    The file lists the types the skops file needs beyond skops' own list only when mloop trusts each of them
    without asking (its ``EXTRA`` list): a model that needs the user's trust gets no MLmodel file.
    """
    if flavor != "sklearn" or options.get("serialization") != "skops":
        return False
    from mloop._util.optional import import_skops
    from mloop.registry.flavors._trust import EXTRA

    needed = import_skops().get_untrusted_types(file=Path(folder) / options["file"])
    if any(name not in EXTRA for name in needed):
        return False
    versions = installed_versions(("scikit-learn", "skops"))
    mlmodel = {
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": options["file"],
                                "predict_fn": "predict", "python_version": platform.python_version()},
            "sklearn": {"pickled_model": options["file"], "serialization_format": "skops",
                        "sklearn_version": versions.get("scikit-learn", ""), "code": None,
                        "skops_trusted_types": sorted(needed)},
        },
        "utc_time_created": _utc_now(),
    }
    (Path(folder) / MLMODEL).write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    return True


def _utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
