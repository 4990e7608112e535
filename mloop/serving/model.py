"""A model as the server holds it: the registry's ``LoadedModel`` plus the compiled input checks.

``ServedModel.load(uri)`` takes every URI the registry takes and one more,
``deployments:/<environment>/<name>``: whatever version is deployed in that environment.
``source_version(uri)`` tells which version a URI points at *now*, which is how the server
notices that an alias or an environment moved.

Two hooks run on the request path (see ``_hooks``, which switches them on per model):

* ``checks``: extra input checks, each a callable ``frame -> list[FieldError]``; a model whose
  version has a training schema (or ships ``schema.json``) gets ``mloop.validation.serving_check``;
* ``feature_lookup``: a callable ``columns, n -> columns`` that fills a request carrying only
  entity keys with the model's features; a model whose metadata names a ``feature_service``
  gets ``mloop.features.lookup.serving_lookup`` over the process's feature store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd

from mloop.errors import InvalidInputError
from mloop.registry import LoadedModel, load_model
from mloop.registry._proba import class_labels, predict_proba
from mloop.registry.flavors import get_flavor
from mloop.registry.signature import FieldError
from mloop.registry.uri import parse_deployment_uri
from mloop.serving._inputs import Columns, InputSpec
from mloop.serving._payload import PayloadError, parse_predict
from mloop.serving.outputs import Outputs, body_fields

__all__ = ["FeatureLookup", "InputCheck", "ServedModel", "resolve_source", "source_version"]

log = logging.getLogger("mloop.serving")

InputCheck = Callable[[pd.DataFrame], list[FieldError]]
FeatureLookup = Callable[[Columns, int], Columns]


def resolve_source(uri: str, client: Any = None) -> str:
    """The concrete model URI (``models:/name/3``) behind an alias, 'latest' or deployment URI."""
    from mloop.registry import resolve_model_uri

    deployment = parse_deployment_uri(uri)
    if deployment is None:
        return resolve_model_uri(uri, client=client) if uri.startswith("models:/") else uri
    env, name = deployment
    client = client or _client()
    version = client.environments.current(name, env)
    if version is None:
        raise InvalidInputError(field="uri", value=uri,
                                expected=f"an environment where '{name}' is deployed "
                                         f"(nothing is deployed in '{env}')")
    return f"models:/{name}/{version}"


def source_version(uri: str, client: Any = None) -> str:
    """What ``uri`` points at now: the concrete URI for registry URIs, the URI itself otherwise."""
    return resolve_source(uri, client) if _moves(uri) else uri


def _moves(uri: str) -> bool:
    """Whether the target of ``uri`` can change while serving (alias, latest, deployment)."""
    return uri.startswith("deployments:/") or (uri.startswith("models:/") and ("@" in uri or uri.endswith("/latest")))


def _client() -> Any:
    from mloop.config import Settings
    from mloop.registry import registry_for

    return registry_for(Settings.load())


class ServedModel:
    """One loaded version: ``predict_columns`` runs checked columns through the flavor's predict."""

    def __init__(self, loaded: LoadedModel, *, source: str | None = None, checks: list[InputCheck] | None = None,
                 feature_lookup: FeatureLookup | None = None) -> None:
        self.loaded = loaded
        self.source = source or loaded.uri
        self.name = loaded.name or _name_from(loaded)
        self.version = str(loaded.version) if loaded.version is not None else (loaded.run_id or "local")[:12]
        self.spec = InputSpec(loaded.signature)
        self.checks = list(checks or [])
        self.feature_lookup = feature_lookup
        self.moves = _moves(self.source)
        self.concrete = self.source  # what the source pointed at when loaded (set by ``load``)
        self._flavor = get_flavor(loaded.flavor)
        self._native = loaded.native
        self._array_ok = False  # set by warm_up when the model gives the same answers on a plain array
        self.loaded_at = time.time()
        self.default_output = loaded.default_output
        self.proba_refusal = loaded.proba_refusal  # why no probabilities (None: it has them)
        # the class labels of its probabilities (from the model, else from its first answer)
        self.classes: list[Any] | None = class_labels(loaded.flavor, loaded.native)
        self.not_ready: str | None = "not checked yet"  # why it cannot answer yet (None: it answered its example)
        self.schema_warnings: dict[str, int] = {}  # column -> training-schema "warn" violations seen
        self.unreported_warnings = 0  # taken by the endpoint into its metrics after each request

    @classmethod
    def load(cls, uri: str, *, client: Any = None, trusted: bool | list[str] = False, concrete: str | None = None,
             ) -> ServedModel:
        """Load ``uri`` (an alias or a deployment is resolved to its version now, unless ``concrete``
        already says which version it points at). ``trusted`` is ``load_model``'s: the model is refused
        before anything of it runs (the warm-up included) unless it is safe or trusted."""
        concrete = concrete or source_version(uri, client)
        loaded = load_model(concrete, client=client, trusted=trusted)
        served = cls(loaded, source=uri)
        served.checks, served.feature_lookup = _hooks(loaded, client, on_warn=served._warned)
        served.concrete = concrete
        return served

    def __repr__(self) -> str:
        return f"<ServedModel {self.name} v{self.version} from {self.source}>"

    def _warned(self, violations: list[Any]) -> None:
        for v in violations:
            self.schema_warnings[v.column] = self.schema_warnings.get(v.column, 0) + 1
        self.unreported_warnings += len(violations)

    # ------------------------------------------------------------------ the request path
    def prepare(self, columns: Columns, n: int) -> tuple[Columns, list[FieldError]]:
        """Fill features (when a lookup is set), check the columns; returns the model's columns and problems."""
        if self.feature_lookup is not None:
            try:
                columns = self.feature_lookup(columns, n)
            except InvalidInputError as exc:  # entities missing or expired, keys absent: a 422, never a 500
                errors = getattr(exc, "errors", None) or [FieldError(
                    field=exc.field or "features", expected=exc.expected or "entities with features",
                    value=exc.value, row=None, message=str(exc))]
                return columns, list(errors)
        errors = self.spec.check(columns, n)
        if errors:
            return columns, errors
        columns = self.spec.coerce(columns, n)
        if self.checks:  # errors is empty here: a signature problem returned above
            frame = self.spec.frame(columns)
            for check in self.checks:
                errors.extend(check(frame))  # type: ignore[arg-type]
        return columns, errors

    def output_for(self, requested: str | None) -> str:
        """The output a request gets ("label", "proba" or "both"); PayloadError when probabilities are asked of a
        model that has none."""
        output = requested or self.default_output
        if output != "label" and self.proba_refusal is not None:
            raise PayloadError(f"output '{output}' (class probabilities) is not available from {self.name} "
                               f"v{self.version}: {self.proba_refusal}; ask for output 'label'", field="output")
        return output

    def predict_columns(self, columns: Columns) -> list[Any]:
        """Predictions (JSON-ready labels or values) for checked columns."""
        if self._array_ok:
            return to_list(self._native.predict(self.spec.array(columns)))
        return to_list(self._flavor.predict(self._native, self.spec.frame(columns)))

    def answer(self, columns: Columns, output: str = "label") -> Outputs:
        """Labels, class probabilities or both (``output``) for checked columns."""
        if output == "label":
            return Outputs(self.predict_columns(columns))
        inputs = self.spec.array(columns) if self._array_ok else self.spec.frame(columns)
        matrix, classes = predict_proba(self.loaded.flavor, self._native, inputs)
        if self.classes is None:  # learnt once; requests never rewrite what other threads read
            self.classes = classes
        labels = None
        if output == "both":  # the same inputs: building them again costs as much as the predict
            native = self._native.predict(inputs) if self._array_ok else self._flavor.predict(self._native, inputs)
            labels = to_list(native)
        return Outputs(labels, matrix.tolist(), classes)

    def warm_up(self) -> None:
        """Find the fast path, then check the model can answer: ``not_ready`` says why not (None: ready)."""
        try:
            self._probe_array()
        except Exception:  # the readiness check below reports the failure with its reason
            self._array_ok = False
        self.not_ready = self.self_check()
        if self.not_ready is not None:
            log.error("%s v%s is not ready: %s", self.name, self.version, self.not_ready)

    def self_check(self) -> str | None:
        """Answer the stored input example as a client would send it, or say why that fails (None: it answers).

        The example goes through JSON (records, nulls for missing values) and then the request path: payload
        parsing, the signature and training-schema checks, coercion, the model (labels, and probabilities when it
        has them) and the JSON encoding of the answer. A model without an example counts as able to answer.
        """
        example = self.loaded.input_example()
        if example is None or example.empty:
            return None
        try:
            body = orjson.loads(example.to_json(orient="records", date_format="iso"))
            columns, n = parse_predict(body)
            checked, errors = self.prepare(columns, n)
            if errors:
                listed = "; ".join(e.message for e in errors[:3])
                return f"its input example (as JSON) is rejected by its own checks: {listed}"
            outputs = ["label"] if self.proba_refusal is not None else ["label", "both"]
            for output in outputs:
                answer = self.answer(checked, output)
                if len(answer) != n:
                    return f"it answered {len(answer)} rows for the {n} rows of its input example"
                orjson.dumps(body_fields(answer), option=orjson.OPT_SERIALIZE_NUMPY)
        except Exception as exc:
            return f"predicting its input example failed: {type(exc).__name__}: {str(exc)[:300]}"
        return None

    def _probe_array(self) -> None:
        """Requests skip building a frame when the model answers a plain array identically.

        A scikit-learn model fitted on a frame of numeric columns spends most of a 1-row
        call checking feature names (about 1.5 ms of 1.7). When its ``feature_names_in_``
        are the signature's columns in order and it answers the example identically on a
        plain array, requests skip the frame (the signature has already checked names and types).
        """
        example = self.loaded.input_example()
        if example is None or example.empty:
            return
        names = getattr(self._native, "feature_names_in_", None)
        if self.loaded.flavor != "sklearn" or names is None or list(names) != list(self.spec.columns) \
                or not self.spec.numeric_block:
            return
        columns, errors = self.prepare({c: example[c].tolist() for c in example.columns}, len(example))
        if errors:
            return
        by_frame = self.predict_columns(columns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                by_array = to_list(self._native.predict(self.spec.array(columns)))
            except Exception:
                return
        if by_array == by_frame:
            warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
            self._array_ok = True


def to_list(out: Any) -> list[Any]:
    """A model output as a JSON-ready list (one item per row)."""
    if isinstance(out, pd.DataFrame):
        return out.to_dict(orient="records")
    if isinstance(out, pd.Series):
        out = out.to_numpy()
    if isinstance(out, np.ndarray):
        return out.tolist()
    if hasattr(out, "detach"):  # torch
        return out.detach().cpu().numpy().tolist()
    return list(out)


def _name_from(loaded: LoadedModel) -> str:
    path = str(loaded.folder).rstrip("/")
    return path.rsplit("/", 1)[-1] or "model"


def _hooks(loaded: LoadedModel, client: Any = None, on_warn: Callable[[list[Any]], None] | None = None,
           ) -> tuple[list[InputCheck], FeatureLookup | None]:
    """The training schema's checks and the feature service's lookup, when the model has them.

    The schema is the one attached to the version (``mloop.validation.attach_to_model_version``, version
    tag ``mloop.schema``), else an extra file ``schema.json``/``schema.yaml`` shipped in the model folder
    (or the file the manifest key ``schema`` names). The feature service is the model's metadata (or
    manifest) key ``feature_service``; its store is the one of ``MLOOP_FEATURE_REPO`` (``--feature-repo``).
    """
    checks: list[InputCheck] = []
    schema = _training_schema(loaded, client)
    columns = list(loaded.signature.columns) if loaded.signature is not None else None
    if schema is not None and (loaded.signature is None or loaded.signature.input_kind == "frame"):
        from mloop.validation import serving_check

        checks.append(serving_check(schema, columns=columns, on_warn=on_warn))
    lookup: FeatureLookup | None = None
    service = loaded.metadata.get("feature_service") or loaded.manifest.get("feature_service")
    if service:
        from mloop.features.lookup import serving_lookup

        lookup = serving_lookup(feature_store(client), str(service), model_columns=columns)
    return checks, lookup


def _training_schema(loaded: LoadedModel, client: Any) -> Any:
    from mloop.errors import NotFoundError

    if loaded.name and loaded.version is not None:
        from mloop.validation import model_schema

        # through a server the stored schema is the server's to read (validation's remote path), not the blobs'
        remote = bool(getattr(getattr(client, "settings", None), "remote", False))
        try:
            return model_schema(loaded.name, int(loaded.version), registry=None if remote else client)
        except NotFoundError:
            pass
    named = loaded.manifest.get("schema")
    if named and (loaded.folder / str(named)).is_file():
        return str(loaded.folder / str(named))
    for name in ("schema.json", "schema.yaml", "schema.yml"):
        if name in loaded.extra_files:
            return str(loaded.extra_file(name))
    return None


_STORES: dict[tuple[str | None, str], Any] = {}
_STORES_LOCK = threading.Lock()


def feature_store(client: Any = None) -> Any:
    """The process's FeatureStore: repository ``MLOOP_FEATURE_REPO`` (if set), the client's settings."""
    from mloop.config import Settings
    from mloop.features import FeatureStore

    settings = getattr(client, "settings", None) or Settings.load()
    repo = os.environ.get("MLOOP_FEATURE_REPO") or None
    key = (repo, str(settings.db_url))
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = FeatureStore(repo, settings=settings)
    return store
