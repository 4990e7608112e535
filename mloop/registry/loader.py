"""``load_model(uri)``: one ``predict`` for every flavor, enforcing the model's signature.

>>> import tempfile, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> from mloop.registry.packaging import save_model
>>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
>>> folder = tempfile.mkdtemp() + "/m"
>>> _ = save_model(LinearRegression().fit(X, [0.0, 2.0, 4.0]), folder, input_example=X)
>>> model = load_model(folder)
>>> model.flavor, round(float(model.predict([{"x": 3.0}])[0]), 6)
('sklearn', 6.0)
"""

from __future__ import annotations

import json
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.registry._code import activate_code
from mloop.registry._proba import OUTPUTS, predict_proba, proba_refusal
from mloop.registry.flavors import Trust, get_flavor
from mloop.registry.flavors._trust import normalize, require_full
from mloop.registry.packaging import EXTRA, read_example, read_manifest, requirement_mismatches, verify_files
from mloop.registry.signature import FieldError, Signature, to_frame
from mloop.registry.uri import parse_uri

__all__ = ["LoadedModel", "clear_cache", "load_model", "resolve_model_uri"]


class LoadedModel:
    """A model ready to predict, with where it came from.

    Attributes: ``uri``, ``name`` / ``version`` (for ``models:/`` URIs), ``run_id``,
    ``flavor``, ``signature`` (or None), ``manifest`` (dict), ``native`` (the flavor's own
    object), ``requirement_mismatches`` (``(package, recorded, installed)`` tuples).
    """

    def __init__(self, *, uri: str, folder: Path, manifest: dict[str, Any], native: Any,
                 name: str | None = None, version: int | None = None, run_id: str | None = None) -> None:
        self.uri = uri
        self.folder = folder
        self.manifest = manifest
        self.native = native
        self.name = name
        self.version = version
        self.run_id = run_id or manifest.get("run_id")
        self.flavor = str(manifest["flavor"])
        self._flavor = get_flavor(self.flavor)
        sig = manifest.get("signature")
        self.signature: Signature | None = Signature.from_dict(sig) if sig else None
        self.requirement_mismatches = requirement_mismatches(manifest)

    def __repr__(self) -> str:
        where = f"{self.name} v{self.version}" if self.name else self.uri
        return f"<LoadedModel {where} flavor={self.flavor}>"

    def validate(self, data: Any) -> list[FieldError]:
        """The problems of ``data`` against the signature, as a list (empty when fine); never raises."""
        return self.signature.validate(data) if self.signature is not None else []

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict on a DataFrame, a NumPy array or a list of records; bad input raises InvalidInputError
        naming the column, the expected type and the offending value.

        ``params={"output": "proba"}`` answers ``predict_proba``'s frame instead of labels, ``"both"`` a
        frame of the label (column ``prediction``) beside one column per class; without it the model's
        default (``log_model(..., predict_output=...)``, else ``"label"``) is used.
        """
        output = self.output_for(params)
        inputs = self._inputs(data)
        if output == "label":
            return self._flavor.predict(self.native, inputs)
        proba = self._proba_frame(inputs)
        if output == "proba":
            return proba
        labels = np.asarray(self._flavor.predict(self.native, inputs))
        return pd.concat([pd.DataFrame({"prediction": labels}, index=proba.index), proba], axis=1)

    def predict_proba(self, data: Any) -> pd.DataFrame:
        """Class probabilities: one row per input row, one column per class label (JSON-clean: plain ints or
        strings). InvalidInputError says why when the model has none (a regressor, an ONNX or torch model).

        >>> import tempfile
        >>> from sklearn.linear_model import LogisticRegression
        >>> from mloop.registry.packaging import save_model
        >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
        >>> folder = tempfile.mkdtemp() + "/m"
        >>> _ = save_model(LogisticRegression().fit(X, [0, 0, 1, 1]), folder, input_example=X)
        >>> load_model(folder).predict_proba(X).columns.tolist()
        [0, 1]
        """
        self._require_proba("proba")
        return self._proba_frame(self._inputs(data))

    @property
    def default_output(self) -> str:
        """What ``predict`` answers without params: the ``predict_output`` declared at log time, else "label"."""
        declared = self.manifest.get("predict_output") or "label"
        return declared if declared in OUTPUTS else "label"

    @property
    def proba_refusal(self) -> str | None:
        """Why this model cannot answer class probabilities (None when it can)."""
        return proba_refusal(self.flavor, self.native)

    def output_for(self, params: dict[str, Any] | None) -> str:
        """The output ``params`` ask for ("label", "proba" or "both"), checked against what the model offers."""
        output = (params or {}).get("output") or self.default_output
        if output not in OUTPUTS:
            raise InvalidInputError(field="params.output", value=output, expected=f"one of {list(OUTPUTS)}")
        if output != "label":
            self._require_proba(output)
        return str(output)

    def _require_proba(self, output: str) -> None:
        reason = self.proba_refusal
        if reason is not None:
            raise InvalidInputError(f"Model {self} cannot answer output '{output}' (class probabilities): {reason}. "
                                    "Ask for output 'label'.", field="params.output", value=output,
                                    expected="'label' for this model")

    def _inputs(self, data: Any) -> Any:
        sig = self.signature
        if sig is None:
            return data if isinstance(data, np.ndarray | pd.DataFrame) else to_frame(data)
        frame = sig.enforce(data)
        return frame.to_numpy(dtype=sig.tensor_dtype or "float64") if sig.input_kind == "tensor" else frame

    def _proba_frame(self, inputs: Any) -> pd.DataFrame:
        matrix, classes = predict_proba(self.flavor, self.native, inputs)
        index = inputs.index if isinstance(inputs, pd.DataFrame) else None
        return pd.DataFrame(matrix, columns=pd.Index(classes, dtype=object), index=index)

    @property
    def metadata(self) -> dict[str, Any]:
        """The ``metadata`` mapping saved with the model (empty when none was)."""
        return dict(self.manifest.get("metadata") or {})

    @property
    def extra_files(self) -> list[str]:
        """Names of the extra files saved with the model (read one with ``extra_file``)."""
        return list(self.manifest.get("extra_files") or [])

    def extra_file(self, name: str) -> Path:
        """The local path of the extra file ``name`` (NotFoundError lists the ones there are)."""
        if name not in self.extra_files:
            raise NotFoundError(f"Model {self.uri} has no extra file '{name}'; it has {self.extra_files}.",
                                field="name")
        return self.folder / EXTRA / name

    def input_example(self) -> pd.DataFrame | None:
        """The input example stored with the model (a few rows), or None."""
        return read_example(self.folder, self.manifest)


def _default_client() -> Any:
    from mloop.registry._log import registry_for

    return registry_for(Settings.load())


def load_model(uri: str | Path, *, trusted: bool | list[str] = False, client: Any = None, verify: bool = True,
               cache: bool = True) -> LoadedModel:
    """Load a model from ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
    ``models:/<name>/latest`` or a local folder.

    Files are checked against the manifest's sha256s (``verify=False`` skips it), recorded
    requirements are compared with the installed ones (a warning lists the mismatches), and
    nothing that could run code is constructed unless trusted: pickled and TorchScript flavors
    need ``trusted=True`` (you trust the model's author); a scikit-learn model may refer only
    to the types and functions on mloop's list (``mloop.registry.flavors._trust``) plus the
    full dotted names you pass as ``trusted=["mypkg.MyTransformer", ...]``. A model logged with
    ``code_paths`` carries Python code that is imported when it loads, so it needs ``trusted=True``;
    its ``code/`` folder then goes first on ``sys.path``.

    The flavor's native object is kept per content (the sha256s of the files, which were
    just verified), so loading the same bytes again, under any URI, skips deserializing:
    loaded models then share one native object. Pass ``cache=False`` for a private copy
    (for example to change the native model in place).
    """
    trust = normalize(trusted)
    ref = parse_uri(str(uri))
    name = version = run_id = None
    if ref.kind == "path":
        folder = Path(str(ref.path))
    else:
        client = client or _default_client()
        storage, name, version, run_id = client.locate(ref)
        folder = client.local_folder(storage)
    manifest = read_manifest(folder)
    if verify:
        verify_files(folder, manifest)
    native = _native(folder, manifest, trust, cache)
    model = LoadedModel(uri=str(uri), folder=folder, manifest=manifest, native=native, name=name, version=version,
                        run_id=run_id)
    if model.requirement_mismatches:
        listed = ", ".join(f"{p} recorded {r}, installed {i or 'none'}" for p, r, i in model.requirement_mismatches)
        warnings.warn(f"Model {uri} was saved with other package versions: {listed}.", stacklevel=2)
    return model


_natives: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_natives_lock = threading.Lock()
NATIVE_CACHE_SIZE = 16


def _native(folder: Path, manifest: dict[str, Any], trusted: Trust, cache: bool) -> Any:
    flavor = get_flavor(str(manifest["flavor"]))
    options = manifest.get("flavor_options") or {}
    if manifest.get("code_paths"):
        require_full(trusted, flavor.name, f"carries Python code ({', '.join(manifest['code_paths'])}) that runs "
                     "when it loads.")
        activate_code(folder)
    if not cache:
        return flavor.load(folder, options, trusted)
    trust_key = trusted if isinstance(trusted, bool) else tuple(sorted(trusted))
    key = (flavor.name, trust_key, json.dumps(options, sort_keys=True, default=str),
           tuple(sorted(manifest["files"].items())))
    with _natives_lock:
        native = _natives.get(key, _MISSING)
        if native is not _MISSING:
            _natives.move_to_end(key)
            return native
    native = flavor.load(folder, options, trusted)
    with _natives_lock:
        _natives[key] = native
        while len(_natives) > NATIVE_CACHE_SIZE:
            _natives.popitem(last=False)
    return native


_MISSING = object()


def clear_cache() -> None:
    """Forget the native models kept by ``load_model`` (the next loads deserialize again)."""
    with _natives_lock:
        _natives.clear()


def resolve_model_uri(uri: str, client: Any = None) -> str:
    """The concrete ``models:/<name>/<version>`` an alias or 'latest' URI points at now (others unchanged).

    Serving calls it to notice that an alias moved and reload.
    """
    ref = parse_uri(uri)
    if ref.kind != "models" or isinstance(ref.version, int):
        return uri
    version = (client or _default_client()).resolve(uri)
    return version.uri
