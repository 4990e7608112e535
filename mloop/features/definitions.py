"""The definitions a feature repository declares: entities, feature views, on-demand views, services.

Each definition turns into a canonical ``spec()`` (plain JSON data); the registry
stores a new immutable version whenever the spec changes.

>>> from datetime import timedelta
>>> zone = Entity("zone", join_keys=["zone_id"])
>>> stats = FeatureView("zone_stats", entities=[zone], source=FileSource("zones.parquet"),
...                     schema=[Field("avg_fare", Float64)], ttl=timedelta(days=7))
>>> stats.spec()["ttl_seconds"], stats.feature_names
(604800, ['avg_fare'])
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mloop._util.names import check_name
from mloop.errors import InvalidInputError
from mloop.features.sources import DataFrameSource, FileSource, Source, SqlSource, source_from_spec
from mloop.features.types import DType, Float64, dtype

__all__ = ["Definition", "Entity", "FeatureService", "FeatureView", "Field", "OnDemandFeatureView", "RequestSource",
           "fingerprint", "on_demand_feature_view"]

_ = (FileSource, SqlSource, Float64)  # re-exported for doctests


def _ident(value: object, field_name: str) -> str:
    name = check_name(value, field_name)
    if not all(c.isalnum() or c in "_-" for c in name):
        raise InvalidInputError(field=field_name, value=value, expected="letters, digits, '_' or '-' only")
    return name


@dataclass(frozen=True)
class Field:
    """A typed column: a feature, a join key or a request input."""

    name: str
    dtype: DType = Float64
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", dtype(self.dtype))
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInputError(field="field.name", value=self.name, expected="a non-empty column name")

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype.name, "description": self.description}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Field:
        return cls(spec["name"], dtype(spec["dtype"]), spec.get("description", ""))


def _fields(schema: Sequence[Field | Any], field_name: str) -> tuple[Field, ...]:
    """A schema as Fields: at least one, with distinct names."""
    fields = [f if isinstance(f, Field) else Field(*f) for f in schema]
    if not fields:
        raise InvalidInputError(field=field_name, value=[], expected="at least one Field")
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise InvalidInputError(field=field_name, value=names, expected="distinct feature names")
    return tuple(fields)


class Definition:
    """Base of every definition: a kind, a name, and a canonical spec."""

    kind = "definition"
    name: str

    def spec(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Entity(Definition):
    """What features describe (a zone, a driver): its name and the join keys that identify one."""

    name: str
    join_keys: Sequence[str] = ()
    key_types: Sequence[DType | str] = ()
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    kind = "entity"

    def __post_init__(self) -> None:
        _ident(self.name, "entity.name")
        if isinstance(self.join_keys, str) or not all(isinstance(k, str) and k for k in self.join_keys):
            raise InvalidInputError(field=f"entity {self.name}.join_keys", value=self.join_keys,
                                    expected="a list of column names, e.g. ['zone_id']")
        keys = list(self.join_keys) or [self.name]
        object.__setattr__(self, "join_keys", tuple(keys))
        types = [dtype(t) for t in self.key_types] or [None] * len(keys)
        if len(types) != len(keys):
            raise InvalidInputError(field=f"entity {self.name}.key_types", value=self.key_types,
                                    expected=f"one type per join key {keys}")
        object.__setattr__(self, "key_types", tuple(types))

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "join_keys": list(self.join_keys),
                "key_types": [t.name if t else None for t in self.key_types],
                "description": self.description, "owner": self.owner, "tags": dict(self.tags)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Entity:
        types = [t for t in spec.get("key_types", []) if t]
        return cls(spec["name"], spec["join_keys"], types if len(types) == len(spec["join_keys"]) else (),
                   spec.get("description", ""), spec.get("owner", ""), spec.get("tags", {}))


@dataclass(frozen=True, eq=False)
class FeatureView(Definition):
    """Typed features of one or more entities read from a source, with event time and a time to live."""

    name: str
    entities: Sequence[Entity | str]
    schema: Sequence[Field]
    source: Source | Any
    timestamp: str = "event_timestamp"
    created_timestamp: str | None = None
    ttl: timedelta | None = None
    timezone: str | None = None
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    online: bool = True

    kind = "feature_view"

    def __post_init__(self) -> None:
        _ident(self.name, "feature_view.name")
        if not isinstance(self.source, Source):
            if hasattr(self.source, "columns") and hasattr(self.source, "dtypes") or hasattr(self.source, "schema"):
                object.__setattr__(self, "source", DataFrameSource(self.source, name=self.name))
            elif isinstance(self.source, str):
                object.__setattr__(self, "source", FileSource(self.source))
            else:
                raise InvalidInputError(field=f"feature view {self.name}.source", value=type(self.source).__name__,
                                        expected="a FileSource, SqlSource, DataFrame or a path")
        if not self.entities:
            raise InvalidInputError(field=f"feature view {self.name}.entities", value=[],
                                    expected="at least one entity")
        object.__setattr__(self, "schema", _fields(self.schema, f"feature view {self.name}.schema"))
        object.__setattr__(self, "entities", tuple(self.entities))
        if self.ttl is not None and (not isinstance(self.ttl, timedelta) or self.ttl <= timedelta(0)):
            raise InvalidInputError(field=f"feature view {self.name}.ttl", value=self.ttl,
                                    expected="a positive timedelta, or None for no limit")

    @property
    def entity_names(self) -> list[str]:
        return [e if isinstance(e, str) else e.name for e in self.entities]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.schema]

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "entities": self.entity_names, "schema": [f.spec() for f in self.schema],
                "source": self.source.spec(), "timestamp": self.timestamp,
                "created_timestamp": self.created_timestamp,
                "ttl_seconds": int(self.ttl.total_seconds()) if self.ttl else None, "timezone": self.timezone,
                "description": self.description, "owner": self.owner, "tags": dict(self.tags),
                "online": self.online}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], local: FeatureView | None = None) -> FeatureView:
        source = source_from_spec(spec["source"], local.source if local is not None else None)
        ttl = timedelta(seconds=spec["ttl_seconds"]) if spec.get("ttl_seconds") else None
        return cls(spec["name"], spec["entities"], [Field.from_spec(f) for f in spec["schema"]], source,
                   spec.get("timestamp", "event_timestamp"), spec.get("created_timestamp"), ttl,
                   spec.get("timezone"), spec.get("description", ""), spec.get("owner", ""),
                   spec.get("tags", {}), spec.get("online", True))


@dataclass(frozen=True)
class RequestSource:
    """Values that only the request carries (e.g. the trip distance), typed."""

    name: str
    schema: Sequence[Field]

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "schema": [f.spec() for f in self.schema]}


@dataclass(frozen=True, eq=False)
class OnDemandFeatureView(Definition):
    """Features computed by a vectorized function of request data and other features.

    ``function`` takes a pandas DataFrame with the ``inputs`` features (named by
    feature) and the request columns, and returns a DataFrame with the ``schema``
    columns. The same function runs on training sets and on online requests.
    """

    name: str
    inputs: Sequence[str]
    schema: Sequence[Field]
    function: Callable[[Any], Any]
    request: Sequence[Field] = ()
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    kind = "on_demand_feature_view"

    def __post_init__(self) -> None:
        _ident(self.name, "on_demand_feature_view.name")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "schema", _fields(self.schema, f"on-demand view {self.name}.schema"))
        request = self.request.schema if isinstance(self.request, RequestSource) else self.request
        object.__setattr__(self, "request", tuple(f if isinstance(f, Field) else Field(*f) for f in request))
        if not callable(self.function):
            raise InvalidInputError(field=f"on-demand view {self.name}.function", value=self.function,
                                    expected="a function DataFrame -> DataFrame")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.schema]

    def spec(self) -> dict[str, Any]:
        try:
            code = inspect.getsource(self.function)
        except (OSError, TypeError):
            code = getattr(self.function, "__qualname__", repr(self.function))
        return {"name": self.name, "inputs": list(self.inputs), "schema": [f.spec() for f in self.schema],
                "request": [f.spec() for f in self.request], "function": code,
                "description": self.description, "owner": self.owner, "tags": dict(self.tags)}

    def transform(self, frame: Any) -> Any:
        """Run the function on ``frame`` and check it returned every declared column."""
        import pandas as pd

        from mloop.errors import UserCodeError

        try:
            out = self.function(frame)
        except Exception as exc:
            raise UserCodeError(f"on-demand feature view '{self.name}' raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, pd.DataFrame):
            raise UserCodeError(f"on-demand feature view '{self.name}' must return a DataFrame, "
                                f"got {type(out).__name__}")
        missing = [f for f in self.feature_names if f not in out.columns]
        if missing:
            raise UserCodeError(f"on-demand feature view '{self.name}' did not return the columns {missing}")
        return out[self.feature_names]


def on_demand_feature_view(*, inputs: Sequence[str], schema: Sequence[Field], request: Sequence[Field] = (),
                           name: str | None = None, description: str = "", owner: str = "",
                           tags: dict[str, str] | None = None) -> Callable[[Callable[[Any], Any]],
                                                                          OnDemandFeatureView]:
    """Decorator form of :class:`OnDemandFeatureView` (the function's name is the view's name)."""

    def wrap(fn: Callable[[Any], Any]) -> OnDemandFeatureView:
        return OnDemandFeatureView(name or fn.__name__, inputs, schema, fn, request, description or (fn.__doc__ or ""),
                                   owner, tags or {})

    return wrap


@dataclass(frozen=True, eq=False)
class FeatureService(Definition):
    """The named set of features a model uses: feature references like ``"zone_stats:avg_fare"``,
    ``"zone_stats"`` (every feature of the view) or ``"zone_stats@2:avg_fare"`` (a pinned version)."""

    name: str
    features: Sequence[str]
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    kind = "feature_service"

    def __post_init__(self) -> None:
        _ident(self.name, "feature_service.name")
        refs = [r.name if isinstance(r, FeatureView | OnDemandFeatureView) else r for r in self.features]
        if not refs or not all(isinstance(r, str) and r for r in refs):
            raise InvalidInputError(field=f"feature service {self.name}.features", value=self.features,
                                    expected="a non-empty list of feature references like 'view:feature'")
        object.__setattr__(self, "features", tuple(refs))

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "features": list(self.features), "description": self.description,
                "owner": self.owner, "tags": dict(self.tags)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureService:
        return cls(spec["name"], spec["features"], spec.get("description", ""), spec.get("owner", ""),
                   spec.get("tags", {}))


def fingerprint(spec: dict[str, Any]) -> str:
    """A stable digest of a spec: equal specs, equal fingerprints."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


KINDS = {c.kind: c for c in (Entity, FeatureView, OnDemandFeatureView, FeatureService)}


def definition_from_spec(kind: str, spec: dict[str, Any], local: Definition | None = None) -> Definition:
    """Rebuild a definition sent as its ``spec()`` (how a client applies definitions through a server).

    An on-demand view's function is code, which is never run from text: it is taken from ``local`` (the
    server's own feature repository) when that view's spec is the same, and refused otherwise.

    >>> definition_from_spec("entity", {"name": "zone", "join_keys": ["zone_id"]}).join_keys
    ('zone_id',)
    """
    if kind not in KINDS:
        raise InvalidInputError(field="definitions.kind", value=kind, expected=f"one of {sorted(KINDS)}")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InvalidInputError(field=f"definitions.{kind}.spec", value=str(spec)[:80],
                                expected="a definition's spec() with its 'name'")
    try:
        if kind == "entity":
            return Entity.from_spec(spec)
        if kind == "feature_view":
            return FeatureView.from_spec(spec, local if isinstance(local, FeatureView) else None)
        if kind == "feature_service":
            return FeatureService.from_spec(spec)
    except KeyError as exc:
        raise InvalidInputError(field=f"{kind} {spec['name']}", value=f"no {exc.args[0]!r}",
                                expected="a complete spec()") from None
    if isinstance(local, OnDemandFeatureView) and fingerprint(local.spec()) == fingerprint(spec):
        return local
    raise InvalidInputError(
        f"The on-demand view '{spec['name']}' runs Python code, which the server takes only from its own feature "
        "repository: start `mloop server` with MLOOP_FEATURE_REPO=path/to/features.py defining the same view.",
        field=f"on_demand_feature_view {spec['name']}", value=spec["name"],
        expected="an on-demand view the server's feature repository defines identically")
