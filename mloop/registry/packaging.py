"""The model folder: the flavor's files plus ``mloop-model.yaml``, a manifest that describes them.

The manifest records the flavor, the signature, an input example, the Python and
library versions the model needs, the sha256 of every file and the run that made it.

>>> import tempfile, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
>>> folder = tempfile.mkdtemp()
>>> manifest = save_model(LinearRegression().fit(X, [0, 1, 2]), folder, input_example=X)
>>> manifest["flavor"], [c["name"] for c in manifest["signature"]["inputs"]]
('sklearn', ['x'])
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import platform
import threading
import warnings
from collections import OrderedDict
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mloop._util.clock import now_ms
from mloop._util.names import check_artifact_path
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.registry._code import CODE_DIR, check_requirements, copy_code, plan_code_paths, requirements_for
from mloop.registry.flavors import Flavor, detect, get_flavor
from mloop.registry.signature import ColumnSpec, Signature, infer_signature, to_frame

__all__ = ["MANIFEST", "read_manifest", "requirement_mismatches", "save_model", "verify_files"]

MANIFEST = "mloop-model.yaml"
EXTRA = "extra"
FORMAT_VERSION = 1
_EXAMPLE = "input_example.json"
_EXAMPLE_ROWS = 5


def save_model(model: Any, folder: str | Path, *, flavor: str | None = None, signature: Signature | None = None,
               input_example: Any = None, run_id: str | None = None, artifact_path: str | None = None,
               extra_files: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
               training_data: Any = None, unknown_categories: str | None = None,
               pip_requirements: list[str] | None = None, extra_pip_requirements: list[str] | None = None,
               code_paths: list[str | Path] | None = None, predict_output: str | None = None,
               ) -> dict[str, Any]:
    """Write ``model`` into ``folder`` (created; must be empty) with its manifest; returns the manifest.

    The signature, unless given, is inferred from ``input_example`` (or from ``training_data``
    when there is no example): column names, logical types, a category column's categories.
    ``training_data`` (the training frame, or a ``mloop.validation.Schema`` of it) says which
    columns may be null: without it, float and category columns are nullable and the others
    only when the example holds a null. ``unknown_categories`` is what a value outside a
    category column's categories gets at predict time: ``"reject"`` (the default; an
    InvalidInputError, a 422 when served) or ``"missing"`` (read as NaN).

    ``extra_files`` travel with the model (``{name: file path | bytes | dict or list}``; a
    dict or list is written as JSON, or YAML for a ``.yaml`` name): they land under
    ``extra/<name>``, are covered by the sha256 check, and a loaded model reads them back with
    ``model.extra_file(name)``. ``metadata`` is a small JSON-able mapping kept in the manifest
    (``model.metadata``). Both are how a training schema or data profile is attached to a version.

    ``pip_requirements`` replaces the requirements mloop infers (mloop and the flavor's libraries, pinned to
    the installed versions), ``extra_pip_requirements`` adds to them; ``code_paths`` copies the user's own
    modules and packages into the model, which then loads only with ``trusted=True`` (see
    ``mloop.registry._code``).

    ``predict_output`` ("label", "proba" or "both") is what the loaded model's ``predict`` and the
    server answer when a request does not say (default "label"); "proba" needs a classifier.
    """
    target = Path(folder)
    extras = _check_extras(extra_files)
    meta = _check_metadata(metadata)
    code_plan = plan_code_paths(code_paths)
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise InvalidInputError(field="path", value=str(target), expected="an empty or new folder")
    chosen: Flavor = get_flavor(flavor) if flavor else detect(model)
    _check_predict_output(predict_output, chosen, model)
    requirement_lines, pins = requirements_for(pip_requirements, extra_pip_requirements,
                                               installed_versions(("mloop", *chosen.packages)))
    example = _example(input_example)
    signature = _signature(chosen, model, signature, example, training_data, unknown_categories)
    options = chosen.save(model, target, example)
    from mloop.registry.mlflow_format import write_mlmodel

    write_mlmodel(target, chosen.name, options)  # MLflow's client loads the model too, where that is safe
    if example is not None:
        frame = to_frame(example).head(_EXAMPLE_ROWS)
        (target / _EXAMPLE).write_text(frame.to_json(orient="split", index=False, date_format="iso"))
    for name, data in extras.items():
        (target / EXTRA / name).parent.mkdir(parents=True, exist_ok=True)
        (target / EXTRA / name).write_bytes(data)
    code = copy_code(code_plan, target)
    manifest = {
        "format_version": FORMAT_VERSION,
        "flavor": chosen.name,
        "flavor_options": options,
        "signature": signature.to_dict() if signature is not None else None,
        "input_example": _EXAMPLE if example is not None else None,
        "python": platform.python_version(),
        "requirements": pins,
        "pip_requirements": requirement_lines,
        "code_paths": [f"{CODE_DIR}/{name}" for name in code],
        "run_id": run_id,
        "artifact_path": artifact_path,
        "created": now_ms(),
        "metadata": meta,
        **({"predict_output": predict_output} if predict_output else {}),
        "extra_files": sorted(extras),
        "files": {p.relative_to(target).as_posix(): sha256_file(p)
                  for p in sorted(target.rglob("*")) if p.is_file()},
    }
    text = yaml.safe_dump(manifest, sort_keys=False).encode()
    (target / MANIFEST).write_bytes(text)
    _remember(hashlib.sha256(text).digest(), copy.deepcopy(manifest))  # registering it next needs no re-parse
    return manifest


def _check_extras(extra_files: dict[str, Any] | None) -> dict[str, bytes]:
    """``{name: bytes}`` of the extra files, each name a safe relative path."""
    if extra_files is None:
        return {}
    if not isinstance(extra_files, dict):
        raise InvalidInputError(field="extra_files", value=extra_files,
                                expected="a dict of {name: file path, bytes, dict or list}")
    out = {}
    for name, data in extra_files.items():
        check_artifact_path(name, "extra_files")
        if isinstance(data, bytes):
            out[name] = data
        elif isinstance(data, dict | list):
            text = yaml.safe_dump(data, sort_keys=False) if name.endswith((".yaml", ".yml")) else \
                json.dumps(data, indent=1, default=str)
            out[name] = text.encode()
        elif isinstance(data, str | Path) and Path(data).is_file():
            out[name] = Path(data).read_bytes()
        else:
            raise InvalidInputError(field=f"extra_files.{name}", value=data,
                                    expected="an existing file path, bytes, a dict or a list")
    return out


def _check_predict_output(output: str | None, flavor: Flavor, model: Any) -> None:
    from mloop.registry._proba import OUTPUTS

    if output is None:
        return
    if output not in OUTPUTS:
        raise InvalidInputError(field="predict_output", value=output, expected=f"one of {list(OUTPUTS)}")
    offers = flavor.name in ("sklearn", "xgboost", "lightgbm", "python_function") and \
        callable(getattr(model, "predict_proba", None))
    if output != "label" and not offers:
        raise InvalidInputError(f"predict_output={output!r} needs class probabilities, but {type(model).__name__} "
                                f"({flavor.name} flavor) has no predict_proba; use 'label'.",
                                field="predict_output", value=output, expected="'label' for this model")


def _check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    from mloop.tracking._values import check_json_depth

    if metadata is None:
        return None
    check_json_depth("metadata", metadata)  # a deep value would break every reader of the manifest
    try:
        if not isinstance(metadata, dict):
            raise TypeError
        return dict(json.loads(json.dumps(metadata)))
    except (TypeError, ValueError):
        raise InvalidInputError(field="metadata", value=metadata,
                                expected="a mapping of JSON values (strings, numbers, lists, mappings)") from None


def _example(input_example: Any) -> pd.DataFrame | np.ndarray | None:
    if input_example is None:
        return None
    if isinstance(input_example, np.ndarray | pd.DataFrame):
        return input_example
    return to_frame(input_example)


def _signature(flavor: Flavor, model: Any, signature: Any, example: Any, training_data: Any,
               unknown_categories: str | None) -> Signature | None:
    source = example if example is not None else _training_sample(training_data)
    if signature is None:
        if source is None:
            return None
        inferred = infer_signature(source, _sample_output(flavor, model, source), training_data=training_data,
                                   unknown_categories=unknown_categories or "reject")
        if training_data is None:
            inferred = _nulls_the_model_takes(flavor, model, inferred, source)
        return _unknown_as_missing(flavor, model, inferred, source)
    if not isinstance(signature, Signature):
        signature = Signature.from_dict(signature) if isinstance(signature, dict) else signature
        if not isinstance(signature, Signature):
            raise InvalidInputError(field="signature", value=signature, expected="a Signature or its dict form")
    if unknown_categories is not None:  # an explicit policy wins over the given signature's
        signature = dataclasses.replace(signature, unknown_categories=unknown_categories)
    return _unknown_as_missing(flavor, model, signature, source)


def _nulls_the_model_takes(flavor: Flavor, model: Any, signature: Signature, example: Any) -> Signature:
    """Without training data, a column may be null when the example holds a null there or when the model,
    handed the example with that column's values all null, still answers: a few example rows without a
    null say nothing about real data, and letting through what the model can take is the lenient choice.
    A column the model refuses nulls in stays not nullable, so a null gets a clear 422, not a model error.
    When the model cannot even answer the example, float and category columns stay nullable (the default)."""
    if signature.input_kind != "frame":
        return signature
    frame = to_frame(example).head(_EXAMPLE_ROWS)
    if frame.empty or not _answers(flavor, model, signature, frame):
        return signature
    inputs = []
    for spec in signature.inputs:
        if not bool(frame[spec.name].isna().any()):
            spec = dataclasses.replace(spec, nullable=_takes_nulls(flavor, model, signature, spec, frame))
        inputs.append(spec)
    return dataclasses.replace(signature, inputs=tuple(inputs))


def _unknown_as_missing(flavor: Flavor, model: Any, signature: Signature, example: Any) -> Signature:
    """Under ``unknown_categories="missing"`` a value outside a category column's categories reaches the model
    as a null, so such a column must take nulls. One the training data left not nullable becomes nullable
    when the model, handed the example with that column all null, still answers; when it does not, saving is
    refused, naming the column (else every request with an unknown value there would fail inside the model).
    Without an example the model answers, nothing is asked: an unknown value in a column that is not
    nullable is then refused at predict time (a 422) like under ``"reject"``."""
    strict = [s for s in signature.inputs if s.type == "category" and not s.nullable]
    if signature.unknown_categories != "missing" or signature.input_kind != "frame" or not strict or example is None:
        return signature
    frame = to_frame(example).head(_EXAMPLE_ROWS)
    if frame.empty or any(s.name not in frame.columns for s in signature.inputs) or \
            not _answers(flavor, model, signature, frame):
        return signature
    inputs = []
    for spec in signature.inputs:
        if spec in strict:
            if not _takes_nulls(flavor, model, signature, spec, frame):
                raise InvalidInputError(
                    f"unknown_categories='missing' hands the model a null for a value outside the categories of column "
                    f"'{spec.name}', but the model fails when '{spec.name}' is null. Use unknown_categories='reject' "
                    f"(an unknown value then gets a clear 422), or a model that takes a missing "
                    f"'{spec.name}' (e.g. OneHotEncoder(handle_unknown='ignore')).",
                    field=f"unknown_categories.{spec.name}", value="missing",
                    expected=f"'reject' for a model that cannot take a null in '{spec.name}'")
            spec = dataclasses.replace(spec, nullable=True)
        inputs.append(spec)
    return dataclasses.replace(signature, inputs=tuple(inputs))


def _takes_nulls(flavor: Flavor, model: Any, signature: Signature, spec: ColumnSpec, frame: pd.DataFrame) -> bool:
    """Whether the model answers ``frame`` with column ``spec`` all null (as the signature hands it over)."""
    lenient = dataclasses.replace(spec, nullable=True)
    trial = dataclasses.replace(signature, inputs=tuple(lenient if s is spec else s for s in signature.inputs))
    nulled = frame.assign(**{spec.name: pd.Series([None] * len(frame), index=frame.index, dtype=object)})
    return _answers(flavor, model, trial, nulled)


def _answers(flavor: Flavor, model: Any, signature: Signature, frame: pd.DataFrame) -> bool:
    """Whether the model predicts ``frame`` (as the signature hands it over) without an error or a NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = np.asarray(flavor.predict(model, signature.enforce(frame)))
        except Exception:
            return False
    return not (out.dtype.kind in "fc" and bool(np.isnan(out).any()))


def _training_sample(training_data: Any) -> Any:
    """A few rows of the training frame, to infer the signature from when there is no example."""
    if isinstance(training_data, np.ndarray):
        return training_data[:_EXAMPLE_ROWS]
    if training_data is None or (hasattr(training_data, "columns") and isinstance(training_data.columns, dict)):
        return None  # nothing, or a schema: it says which columns may be null, not what the model takes
    return to_frame(training_data).head(_EXAMPLE_ROWS)


def _sample_output(flavor: Flavor, model: Any, example: pd.DataFrame | np.ndarray) -> Any:
    try:
        return flavor.predict(model, example[:_EXAMPLE_ROWS] if isinstance(example, np.ndarray)
                              else example.head(_EXAMPLE_ROWS))
    except Exception:  # the output part of the signature is optional; the model may need fitting inputs
        return None


def installed_versions(packages: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``{distribution: version}`` of the installed ones among ``packages`` (looked up once per process)."""
    found = {}
    for name in packages:
        version = _installed(name)
        if version is not None:
            found[name] = version
    return found


@functools.lru_cache(maxsize=512)
def _installed(name: str) -> str | None:
    # Reading a distribution's metadata costs ~3 ms; what is installed does not change under a running process.
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a model folder, checked for the fields loading needs."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise NotFoundError(f"{folder} is not an mloop model folder: it has no {MANIFEST}.", field="uri")
    return parse_manifest(path.read_bytes(), str(path))


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """The manifest in ``data`` (a private copy: parsed manifests are remembered by their sha256)."""
    digest = hashlib.sha256(data).digest()
    with _parsed_lock:
        cached = _parsed.get(digest)
        if cached is not None:
            _parsed.move_to_end(digest)
    if cached is None:
        cached = _parse_manifest(data, where)
        _remember(digest, cached)
    return copy.deepcopy(cached)


def _remember(digest: bytes, manifest: dict[str, Any]) -> None:
    with _parsed_lock:
        _parsed[digest] = manifest
        while len(_parsed) > _PARSED_MAX:
            _parsed.popitem(last=False)


_parsed: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
_parsed_lock = threading.Lock()
_PARSED_MAX = 256


def _parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    from mloop.tracking._values import check_json_depth

    try:
        manifest = yaml.load(data, Loader=_Loader)
    except (yaml.YAMLError, RecursionError) as exc:
        raise InvalidInputError(f"{where} is not valid YAML: {exc}", field="manifest") from exc
    check_json_depth("manifest", manifest)  # the uploader wrote it; every reader of a version recurses into it
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict) or "flavor" not in manifest:
        raise InvalidInputError(field="manifest", value=where, expected="a model manifest with flavor and files")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise InvalidInputError(field="manifest.format_version", value=manifest["format_version"],
                                expected=f"<= {FORMAT_VERSION}: upgrade mloop to load this model")
    _check_file_names(manifest)
    return manifest


def _check_file_names(manifest: dict[str, Any]) -> None:
    """Every file name a manifest holds is a safe relative path: the uploader wrote it, and it is joined to the
    model's folder or storage key when the model is read (``extra_files: ['../../etc/passwd']`` must not work)."""
    for name, digest in manifest["files"].items():
        check_artifact_path(name, "manifest.files")
        if not isinstance(digest, str):
            raise InvalidInputError(field=f"manifest.files.{name}", value=digest, expected="a sha256 hex string")
    extras = manifest.get("extra_files")
    if extras is not None and not isinstance(extras, list):
        raise InvalidInputError(field="manifest.extra_files", value=extras, expected="a list of file names")
    for name in extras or ():
        check_artifact_path(name, "manifest.extra_files")
    if manifest.get("input_example") is not None:
        check_artifact_path(manifest["input_example"], "manifest.input_example")
    options = manifest.get("flavor_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidInputError(field="manifest.flavor_options", value=options, expected="a mapping")
    if options and "file" in options:
        check_artifact_path(options["file"], "manifest.flavor_options.file")
    for key in ("pip_requirements", "code_paths"):
        value = manifest.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise InvalidInputError(field=f"manifest.{key}", value=value, expected="a list of strings")
    if manifest.get("pip_requirements") is not None:  # `mloop build` writes these lines into requirements.txt
        check_requirements("manifest.pip_requirements", manifest["pip_requirements"])
    for name in manifest.get("code_paths") or ():
        check_artifact_path(name, "manifest.code_paths")
        if not name.startswith(f"{CODE_DIR}/") or name.count("/") != 1:
            raise InvalidInputError(field="manifest.code_paths", value=name, expected=f"'{CODE_DIR}/<module>'")


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Check every file against its recorded sha256; ConflictError names the first that differs."""
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise ConflictError(f"Model file '{name}' is missing from {folder}; the model is incomplete.",
                                field="files")
        actual = sha256_file(path)
        if actual != expected:
            raise ConflictError(f"Model file '{name}' is corrupt or was changed: sha256 {actual[:12]}... "
                                f"but the manifest records {expected[:12]}....", field="files")


def requirement_mismatches(manifest: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """``(package, recorded, installed)`` for each recorded requirement whose installed version differs."""
    recorded = manifest.get("requirements") or {}
    installed = installed_versions(list(recorded))
    out = [(pkg, str(ver), installed.get(pkg)) for pkg, ver in recorded.items() if installed.get(pkg) != str(ver)]
    if manifest.get("python") and manifest["python"].rsplit(".", 1)[0] != platform.python_version().rsplit(".", 1)[0]:
        out.append(("python", manifest["python"], platform.python_version()))
    return out


def read_example(folder: Path, manifest: dict[str, Any]) -> pd.DataFrame | None:
    """The stored input example as a frame (None when the model has none)."""
    name = manifest.get("input_example")
    if not name or not (folder / name).is_file():
        return None
    data = json.loads((folder / name).read_text())
    return pd.DataFrame(data["data"], columns=data["columns"])
