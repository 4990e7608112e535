"""Schemas: what a table must look like, inferred from data, edited by hand, saved as YAML or JSON.

>>> import pandas as pd
>>> schema = infer_schema(pd.DataFrame({"hour": [0, 5, 23], "weather": ["rain", "clear", "rain"]}))
>>> schema["hour"].type, schema["hour"].min, schema["hour"].max
('integer', 0, 23)
>>> schema["weather"].categories
['clear', 'rain']
>>> Schema.from_dict(schema.to_dict()) == schema
True
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import InvalidInputError
from mloop.validation._data import Col, as_frame

__all__ = ["CHECKS", "SCHEMA_VERSION", "ColumnSchema", "Schema", "infer_schema", "load_schema"]

SCHEMA_VERSION = 1
TYPES = ("integer", "float", "boolean", "string", "datetime")
# every check and its default severity; a column's ``severity`` mapping overrides any of them
CHECKS = {
    "missing_column": "error", "type": "error", "not_null": "error", "range": "error", "finite": "error",
    "category": "error", "pattern": "error", "unique": "error", "length": "warn", "null_share": "warn",
    "extra_column": "warn", "empty": "warn",
}
SEVERITIES = ("error", "warn", "off")


@dataclass(eq=True)
class ColumnSchema:
    """The rules for one column; every field is editable (``schema["hour"].max = 23``)."""

    name: str
    type: str
    nullable: bool = True
    null_share: float | None = None  # observed when inferred (informational)
    max_null_share: float | None = None
    min: Any = None
    max: Any = None
    allow_inf: bool = False
    categories: list[Any] | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    unique: bool = False
    required: bool = True
    severity: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise InvalidInputError(field=f"{self.name}.type", value=self.type, expected=f"one of {', '.join(TYPES)}")
        for check, level in self.severity.items():
            if check not in CHECKS or level not in SEVERITIES:
                raise InvalidInputError(field=f"{self.name}.severity.{check}", value=level,
                                        expected=f"a check in {sorted(CHECKS)} set to error, warn or off")

    def severity_of(self, check: str) -> str:
        return self.severity.get(check, CHECKS[check])

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that say something (defaults are left out), in a stable order."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if f.name == "type" or value != default:
                out[f.name] = value
        return out


@dataclass(eq=True)
class Schema:
    """Columns by name, whether other columns are tolerated, and the format version."""

    columns: dict[str, ColumnSchema]
    allow_extra_columns: bool = True
    version: int = SCHEMA_VERSION
    rows: int | None = None  # rows it was inferred from (informational)

    def __getitem__(self, name: str) -> ColumnSchema:
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidInputError(field="column", value=name, expected=f"one of {list(self.columns)}") from None

    def __iter__(self) -> Any:
        return iter(self.columns.values())

    def __len__(self) -> int:
        return len(self.columns)

    def select(self, names: list[str]) -> Schema:
        """A schema with only these columns (e.g. a model's features)."""
        return Schema({n: self[n] for n in names}, self.allow_extra_columns, self.version, self.rows)

    # ------------------------------------------------------------------ (de)serialization
    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mloop.schema", "version": self.version, "rows": self.rows,
                "allow_extra_columns": self.allow_extra_columns,
                "columns": {name: _jsonable(c.to_dict()) for name, c in self.columns.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            raise InvalidInputError(field="schema", value=type(data).__name__,
                                    expected="a mapping with 'version' and 'columns'")
        version = int(data.get("version", SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            raise InvalidInputError(field="schema.version", value=version,
                                    expected=f"<= {SCHEMA_VERSION} (upgrade mloop to read this schema)")
        known = {f.name for f in fields(ColumnSchema)}
        columns = {}
        for name, spec in data["columns"].items():
            if not isinstance(spec, dict) or "type" not in spec:
                raise InvalidInputError(field=f"columns.{name}", value=spec,
                                        expected=f"a mapping with at least 'type' (one of {', '.join(TYPES)})")
            unknown = set(spec) - known
            if unknown:
                raise InvalidInputError(field=f"columns.{name}", value=sorted(unknown),
                                        expected=f"keys among {sorted(known - {'name'})}")
            columns[str(name)] = ColumnSchema(name=str(name), **{k: v for k, v in spec.items() if k != "name"})
        return cls(columns, bool(data.get("allow_extra_columns", True)), version, data.get("rows"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> Path:
        """Write YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        text = self.to_yaml() if path.suffix in (".yaml", ".yml") else self.to_json()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        return load_schema(path)


def load_schema(source: str | Path | dict[str, Any] | Schema) -> Schema:
    """A Schema from a YAML/JSON file, a dict, or a Schema (returned as is)."""
    if isinstance(source, Schema):
        return source
    if isinstance(source, dict):
        return Schema.from_dict(source)
    path = Path(source)
    if not path.is_file():
        raise InvalidInputError(field="schema", value=str(source), expected="an existing YAML or JSON schema file")
    import yaml

    try:
        data = yaml.safe_load(path.read_text())  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise InvalidInputError(field="schema", value=str(path), expected=f"valid YAML or JSON ({exc})") from None
    return Schema.from_dict(data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------------- inference
def infer_schema(data: Any, *, max_categories: int = 50, max_category_share: float = 0.5,
                 range_slack: float = 0.0, lengths: bool = True, infer_unique: bool = True) -> Schema:
    """Infer a Schema from a DataFrame, an Arrow table or a Parquet/CSV path.

    Per column: the logical type, nullability and the observed null share, the numeric (or time) range
    widened by ``range_slack`` times its width, the allowed categories of low-cardinality string or boolean
    columns (at most ``max_categories`` distinct values, covering at most ``max_category_share`` of the rows),
    string lengths for the other strings, and uniqueness. An inferred float or time range warns when it is
    left (it was observed, not declared); integer ranges such as an hour of 0-23 are errors.

    >>> import pandas as pd
    >>> s = infer_schema(pd.DataFrame({"id": [1, 2, 3], "fare": [2.5, None, 7.0]}))
    >>> (s["id"].unique, s["fare"].nullable, round(s["fare"].null_share, 3), s["fare"].max)
    (True, True, 0.333, 7.0)
    """
    frame = as_frame(data)
    columns = {name: _infer_column(frame.col(name), frame.n_rows, max_categories, max_category_share,
                                   range_slack, lengths, infer_unique) for name in frame.names}
    return Schema(columns, rows=frame.n_rows)


def _infer_column(col: Col, n: int, max_categories: int, max_share: float, slack: float, lengths: bool,
                  infer_unique: bool) -> ColumnSchema:
    kind = col.kind
    logical = {"mixed": "string", "null": "float"}.get(kind, kind)
    nulls = col.null_count
    spec = ColumnSchema(name=col.name, type=logical, nullable=nulls > 0, null_share=round(nulls / n, 6) if n else 0.0)
    present = n - nulls
    if kind in ("integer", "float", "datetime") and present:
        values = col.numeric
        finite = values[np.isfinite(values)]
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            pad = (hi - lo) * slack
            lo, hi = lo - pad, hi + pad
            if kind == "integer":
                spec.min, spec.max = int(np.floor(lo)), int(np.ceil(hi))
            elif kind == "datetime":
                spec.min, spec.max = _iso(lo), _iso(hi)
            else:
                spec.min, spec.max = lo, hi
            if kind != "integer":
                # An observed float or time range is not a domain bound (tomorrow's longest trip is longer):
                # leaving it warns. Integer ranges (hour 0-23, codes) stay errors.
                spec.severity = {"range": "warn"}
        spec.allow_inf = bool(np.isinf(values).any())
    if kind in ("string", "boolean", "mixed") and present:
        codes, uniques = col.factorize()
        if kind != "string" or (len(uniques) <= max_categories and len(uniques) <= max(2, max_share * present)):
            spec.categories = sorted(uniques.tolist(), key=lambda v: (str(type(v)), v))
        elif lengths:
            import pyarrow as pa
            import pyarrow.compute as pc

            sizes = pc.utf8_length(pa.array(uniques.astype(str)))
            spec.min_length, spec.max_length = int(pc.min(sizes).as_py()), int(pc.max(sizes).as_py())
        if infer_unique and kind == "string" and spec.categories is None and len(uniques) == present and present > 1:
            spec.unique = True
    elif infer_unique and kind == "integer" and present > 1:
        values = col.numeric
        values = values[~np.isnan(values)]
        spec.unique = bool(np.unique(values).size == present)
    return spec


def _iso(seconds: float) -> str:
    import pandas as pd

    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()
