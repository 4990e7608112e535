"""One view of tabular input for validation, profiles and drift: pandas, Arrow or a Parquet/CSV path.

Each column becomes a ``Col`` that answers, vectorized, the few questions the checks ask: its logical
type, a null mask, its numbers as float64, and its distinct values with one code per row.

>>> import pandas as pd
>>> frame = as_frame(pd.DataFrame({"x": [1, 2, None], "s": ["a", None, "a"]}))
>>> frame.n_rows, frame.col("x").kind, frame.col("s").kind
(3, 'float', 'string')
>>> codes, uniques = frame.col("s").factorize()
>>> codes.tolist(), uniques.tolist()
([0, -1, 0], ['a'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInputError

__all__ = ["Col", "Frame", "as_frame", "LOGICAL_TYPES"]


class cached_property:  # noqa: N801  (functools' takes a lock per first access on 3.11: too slow per request)
    """Compute once per instance, then read from the instance's ``__dict__``."""

    def __init__(self, func: Any) -> None:
        self.func = func
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, cls: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value

LOGICAL_TYPES = ("integer", "float", "boolean", "string", "datetime", "mixed", "null")
_INFER = {"string": "string", "unicode": "string", "bytes": "string", "empty": "null", "integer": "integer",
          "floating": "float", "mixed-integer-float": "float", "decimal": "float", "boolean": "boolean",
          "datetime": "datetime", "datetime64": "datetime", "date": "datetime", "categorical": "string"}


class Col:
    """One column of a pandas Series or an Arrow ChunkedArray, with cached vectorized views."""

    def __init__(self, name: str, values: Any) -> None:
        self.name = name
        self._values = values
        self._arrow = not isinstance(values, pd.Series)

    def __len__(self) -> int:
        return len(self._values)

    # ------------------------------------------------------------------ type
    @cached_property
    def dtype(self) -> str:
        return str(self._values.type if self._arrow else self._values.dtype)

    @cached_property
    def kind(self) -> str:
        """The logical type: integer, float, boolean, string, datetime, mixed or null (no value at all)."""
        return self._arrow_kind() if self._arrow else self._pandas_kind()

    def _pandas_kind(self) -> str:
        s = self._values
        dtype = s.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            inner = Col(self.name, pd.Series(dtype.categories))
            return inner.kind if len(dtype.categories) else "string"
        if pd.api.types.is_bool_dtype(dtype):
            return "boolean"
        if pd.api.types.is_integer_dtype(dtype):
            return "integer"
        if pd.api.types.is_float_dtype(dtype):
            return "float"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "datetime"
        if pd.api.types.is_string_dtype(dtype) or dtype.kind == "O":
            return _INFER.get(pd.api.types.infer_dtype(s, skipna=True), "mixed")
        return "mixed"

    def _arrow_kind(self) -> str:
        import pyarrow as pa

        t = self._values.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_null(t):
            return "null"
        if pa.types.is_boolean(t):
            return "boolean"
        if pa.types.is_integer(t):
            return "integer"
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "float"
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
            return "string"
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            return "datetime"
        return "mixed"

    # ------------------------------------------------------------------ views
    @cached_property
    def null_mask(self) -> np.ndarray:
        """True where the value is missing (None, NaN, NaT)."""
        if self._arrow:
            import pyarrow.compute as pc

            mask = pc.is_null(self._values, nan_is_null=True)
            return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
        if self.kind == "float" and self._values.dtype.kind == "f":
            return np.isnan(self._values.to_numpy())
        return self._values.isna().to_numpy()

    @cached_property
    def null_count(self) -> int:
        return int(self.null_mask.sum())

    @cached_property
    def numeric(self) -> np.ndarray:
        """float64 values (missing as NaN); datetimes as epoch seconds; strings that are numbers are parsed."""
        kind = self.kind
        if self._arrow:
            values = self._values
            import pyarrow as pa
            import pyarrow.compute as pc

            if kind == "datetime":
                values = pc.cast(pc.cast(values, pa.timestamp("us")), pa.int64())
                return values.to_numpy(zero_copy_only=False).astype("float64") / 1e6
            if kind in ("integer", "float", "boolean"):
                return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
            return pd.to_numeric(pd.Series(values.to_pandas()), errors="coerce").to_numpy("float64")
        s = self._values
        if kind == "datetime":
            ns = s.dt.tz_convert("UTC") if getattr(s.dt, "tz", None) is not None else s
            out = ns.to_numpy("datetime64[ns]").view("int64").astype("float64") / 1e9
            out[self.null_mask] = np.nan
            return out
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(s.dtype.categories.dtype)
        if s.dtype.kind in "fiub":
            return s.to_numpy("float64", na_value=np.nan)
        if kind in ("integer", "float", "boolean", "null"):
            return s.astype("float64").to_numpy() if kind != "null" else np.full(len(s), np.nan)
        return pd.to_numeric(s, errors="coerce").to_numpy("float64")

    def factorize(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes with -1 for missing, distinct values as an object array)."""
        return self._factorized

    @cached_property
    def _factorized(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrow:
            import pyarrow as pa
            import pyarrow.compute as pc

            encoded = pc.dictionary_encode(self._values).combine_chunks() if self._values.num_chunks else None
            if encoded is None or len(encoded) == 0:
                return np.zeros(0, dtype=np.int64), np.array([], dtype=object)
            codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            uniques = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
            if pa.types.is_floating(encoded.dictionary.type):  # NaN is missing, like pandas
                nan = np.array([isinstance(v, float) and v != v for v in uniques], dtype=bool)
                if nan.any():
                    codes = np.where(nan[np.maximum(codes, 0)] & (codes >= 0), -1, codes)
            return codes, uniques
        codes, uniques = pd.factorize(self._values, use_na_sentinel=True)
        return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)

    def not_in(self, allowed: list[Any]) -> np.ndarray | None:
        """True where a present value is not in ``allowed`` (Arrow's hash lookup); None when not string data."""
        import pyarrow as pa
        import pyarrow.compute as pc

        values = self._values
        if not self._arrow:
            if not isinstance(values.dtype, pd.StringDtype) or values.dtype.storage != "pyarrow":
                return None
            values = values.array.__arrow_array__()  # zero-copy: the ChunkedArray pandas holds
        try:
            value_set = pa.array([a for a in allowed if isinstance(a, str)], type=pa.string())
            found = pc.is_in(values, value_set=value_set)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
        known_or_missing = pc.or_(pc.fill_null(found, True), pc.is_null(values))  # a missing value is not unseen
        return ~np.asarray(known_or_missing.to_numpy(zero_copy_only=False), dtype=bool)

    def take(self, rows: np.ndarray) -> list[Any]:
        """The values at ``rows`` as plain Python objects (for sample values in messages)."""
        if self._arrow:
            return [_plain(v) for v in self._values.take(rows).to_pylist()]
        out = self._values.iloc[rows].tolist()
        return [_plain(v) for v in out]

    def to_pandas(self) -> pd.Series:
        return pd.Series(self._values.to_pandas(), name=self.name) if self._arrow else self._values


SMALL_ROWS = 16  # frames up to this size (serving requests) skip pandas' per-call overhead
_KINDS: dict[Any, str] = {}


class SmallCol(Col):
    """A column of a tiny pandas frame: same answers as ``Col``, computed on a plain list of values.

    Work per call is proportional to at most ``SMALL_ROWS`` values, so a one-row request costs microseconds.
    """

    def __init__(self, name: str, array: Any) -> None:
        self.name = name
        self._array = array
        self._arrow = False

    def __len__(self) -> int:
        return len(self._array)

    @cached_property
    def _values(self) -> pd.Series:  # type: ignore[override]  # the pandas view, only for rare paths
        return pd.Series(self._array, copy=False)

    @cached_property
    def _list(self) -> list[Any]:
        arrow = getattr(self._array, "_pa_array", None)  # pandas' Arrow-backed strings: 8x faster than tolist()
        if arrow is not None and hasattr(arrow, "to_pylist"):
            return arrow.to_pylist()
        return self._array.tolist()

    @cached_property
    def dtype(self) -> str:
        return str(self._array.dtype)

    @cached_property
    def kind(self) -> str:
        dtype = self._array.dtype
        if getattr(dtype, "kind", "O") not in "OU" and not isinstance(dtype, pd.StringDtype):
            kind = _KINDS.get(dtype)
            if kind is None:
                kind = _KINDS[dtype] = Col(self.name, pd.Series([], dtype=dtype))._pandas_kind()
            return kind
        types = {type(v) for v in self._list if not _missing(v)}
        if not types:
            return "null"
        if types <= {str}:
            return "string"
        if types <= {bool, np.bool_}:
            return "boolean"
        if all(issubclass(t, int | np.integer) and not issubclass(t, bool | np.bool_) for t in types):
            return "integer"
        if all(issubclass(t, int | float | np.number) and not issubclass(t, bool | np.bool_) for t in types):
            return "float"
        return "mixed"

    @cached_property
    def null_mask(self) -> np.ndarray:
        if isinstance(self._array, np.ndarray):  # plain NumPy (not a nullable extension array)
            if self._array.dtype.kind == "f":
                return np.isnan(self._array)
            if self._array.dtype.kind in "iub":
                return np.zeros(len(self._array), dtype=bool)
        return np.fromiter((_missing(v) for v in self._list), bool, len(self._list))

    @cached_property
    def numeric(self) -> np.ndarray:
        if isinstance(self._array, np.ndarray) and self._array.dtype.kind in "fiub":
            return np.asarray(self._array, dtype="float64")
        return Col.numeric.func(self)  # type: ignore[attr-defined]

    @cached_property
    def _factorized(self) -> tuple[np.ndarray, np.ndarray]:
        seen: dict[Any, int] = {}
        codes = np.fromiter((-1 if _missing(v) else seen.setdefault(v, len(seen)) for v in self._list),
                            np.int64, len(self._list))
        uniques = np.empty(len(seen), dtype=object)
        uniques[:] = list(seen)
        return codes, uniques

    def take(self, rows: np.ndarray) -> list[Any]:
        return [_plain(self._list[r]) for r in rows.tolist()]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Any:
    """A sample value as plain Python; every kind of missing (NaN, NA, NaT) becomes None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if _missing(value):
        return None
    return value


class Frame:
    """Columns by name and the row count, over a pandas DataFrame or an Arrow table."""

    def __init__(self, names: list[str], n_rows: int, getter: Any, source: str) -> None:
        self.names = names
        self._names = set(names)
        self.n_rows = n_rows
        self._get = getter
        self._cols: dict[str, Col] = {}
        self.source = source

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def col(self, name: str) -> Col:
        found = self._cols.get(name)
        if found is None:
            values = self._get(name)
            found = self._cols[name] = SmallCol(name, values) if self.source == "small" else Col(name, values)
        return found


def as_frame(data: Any, name: str = "data") -> Frame:
    """Wrap a DataFrame, Series, dict of arrays, NumPy array, Arrow table, or a Parquet/CSV path."""
    if isinstance(data, Frame):
        return data
    if isinstance(data, str | Path):
        return _read_path(Path(data), name)
    if isinstance(data, pd.Series):
        data = data.to_frame(name=data.name if data.name is not None else "value")
    elif isinstance(data, np.ndarray):
        data = pd.DataFrame(data if data.ndim == 2 else {"value": data})
        data.columns = [str(c) for c in data.columns]
    elif isinstance(data, dict):
        data = pd.DataFrame(data)
    if isinstance(data, pd.DataFrame):
        frame = data
        if frame.columns.has_duplicates:
            dup = frame.columns[frame.columns.duplicated()].tolist()
            raise InvalidInputError(field=name, value=dup, expected="unique column names")
        positions = {str(c): i for i, c in enumerate(frame.columns)}
        if len(frame) <= SMALL_ROWS and hasattr(frame, "_get_column_array"):
            return Frame(list(positions), len(frame), lambda c: frame._get_column_array(positions[c]), "small")
        return Frame(list(positions), len(frame), lambda c: frame.iloc[:, positions[c]], "pandas")
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover
        pa = None
    if pa is not None and isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if pa is not None and isinstance(data, pa.Table):
        table = data
        return Frame(list(table.column_names), table.num_rows, table.column, "arrow")
    raise InvalidInputError(field=name, value=type(data).__name__,
                            expected="a pandas DataFrame, Arrow table, dict of arrays or a Parquet/CSV path")


def _read_path(path: Path, name: str) -> Frame:
    if not path.exists():
        raise InvalidInputError(field=name, value=str(path), expected="an existing Parquet or CSV file or folder")
    if path.is_dir() or path.suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return as_frame(pq.read_table(path), name)
    if path.suffix in (".csv", ".tsv", ".gz"):
        return as_frame(pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ","), name)
    if path.suffix in (".json", ".jsonl"):
        return as_frame(pd.read_json(path, lines=path.suffix == ".jsonl"), name)
    raise InvalidInputError(field=name, value=str(path), expected="a .parquet, .csv, .tsv or .jsonl file")
