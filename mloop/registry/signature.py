"""Model signatures: the columns a model takes (name, logical type, nullability) and what it returns.

A signature is inferred from the training frame (or an input example) and enforced on
every ``predict``. ``validate`` returns every problem as data without raising, so a
server can answer 422 with the list; ``enforce`` raises on the first problems.

A pandas ``category`` column becomes the logical type ``category`` with its categories in
order and its ``ordered`` flag, so that the exact ``CategoricalDtype`` the model was trained
on is rebuilt from JSON strings or Parquet columns. A value outside the categories is
rejected (``unknown_categories="reject"``, the default) or read as missing (``"missing"``).

Nullability comes from the training data when it is given; from an input example alone,
``float`` and ``category`` columns are nullable (a model can be handed NaN there, and a few
example rows without nulls say nothing about real data), other types follow the example
(``save_model`` narrows or widens that by asking the model whether it answers with nulls).

>>> import pandas as pd
>>> sig = infer_signature(pd.DataFrame({"hour": [1, 2], "weather": ["dry", "rain"]}))
>>> [(c.name, c.type, c.nullable) for c in sig.inputs]
[('hour', 'integer', False), ('weather', 'string', False)]
>>> [e.message for e in sig.validate(pd.DataFrame({"hour": [1.5], "weather": ["dry"]}))]
["column 'hour': expected integer, got 1.5 (row 0)"]
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from mloop.errors import InvalidInputError

__all__ = ["UNKNOWN_CATEGORIES", "ColumnSpec", "FieldError", "OutputSpec", "Signature", "infer_signature",
           "to_frame"]

LogicalType = Literal["boolean", "integer", "float", "string", "datetime", "category"]
TYPES: tuple[str, ...] = ("boolean", "integer", "float", "string", "datetime", "category")
UNKNOWN_CATEGORIES: tuple[str, ...] = ("reject", "missing")  # what a value outside the categories gets
MAX_CATEGORIES = 100_000  # a signature comes from whoever uploaded the model: bounded
_CATEGORY_VALUE = (str, int, float, bool)  # what JSON can carry, so a request can name every category


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnSpec:
    """One input column: its name, logical type and whether it may hold nulls.

    A ``category`` column also has its ``categories`` (in the training order, which fixes the
    codes a model sees) and whether they are ``ordered``.
    """

    name: str
    type: str
    nullable: bool = False
    categories: tuple[Any, ...] | None = None
    ordered: bool = False

    @property
    def dtype(self) -> pd.CategoricalDtype:
        """The pandas dtype of a ``category`` column, equal to the training frame's."""
        return _category_dtype(self.categories or (), self.ordered)

    def expected(self) -> str:
        """What a value of this column may be, for error messages (``"float or null"``, ``"one of [...]"``)."""
        text = f"one of {_preview(self.categories or ())}" if self.type == "category" else self.type
        return text + (" or null" if self.nullable else "")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.type == "category":
            out["categories"] = list(self.categories or ())
            out["ordered"] = self.ordered
        return out

    @classmethod
    def from_dict(cls, col: Any, where: str) -> ColumnSpec:
        if not isinstance(col, dict) or not isinstance(col.get("name"), str) or col.get("type") not in TYPES:
            raise InvalidInputError(field=where, value=col,
                                    expected=f"{{name: str, type: one of {list(TYPES)}, nullable: bool}}")
        if col["type"] != "category":
            return cls(name=col["name"], type=col["type"], nullable=bool(col.get("nullable")))
        categories = col.get("categories")
        if not isinstance(categories, list) or len(categories) > MAX_CATEGORIES \
                or not all(type(v) in _CATEGORY_VALUE and v == v for v in categories) \
                or len(set(categories)) != len(categories):
            raise InvalidInputError(field=f"{where}.categories", value=_preview(categories) if isinstance(
                categories, list) else categories, expected=f"a list of at most {MAX_CATEGORIES} distinct "
                                                            "strings or numbers")
        if not isinstance(col.get("ordered", False), bool):
            raise InvalidInputError(field=f"{where}.ordered", value=col.get("ordered"), expected="true or false")
        return cls(name=col["name"], type="category", nullable=bool(col.get("nullable")),
                   categories=tuple(categories), ordered=col.get("ordered", False))


@functools.lru_cache(maxsize=256)
def _category_dtype(categories: tuple[Any, ...], ordered: bool) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(categories=list(categories), ordered=ordered)


def _preview(values: Any, limit: int = 20) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}]" if len(values) <= limit else f"[{shown}, ... ({len(values)} in all)]"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputSpec:
    """One model output: a name, a logical type and a shape (-1 for the batch axis)."""

    name: str
    type: str
    shape: tuple[int, ...] = (-1,)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldError:
    """One problem with one input field, as data (serving returns a list of these as a 422 body)."""

    field: str
    expected: str
    value: Any
    row: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        if not isinstance(value, str | int | float | bool | type(None)):
            value = repr(value)
        return {"field": self.field, "expected": self.expected, "value": value, "row": self.row,
                "message": self.message}


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """Inputs (columns) and outputs of a model; ``input_kind`` says whether it takes a frame or a tensor."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[OutputSpec, ...] = ()
    input_kind: Literal["frame", "tensor"] = "frame"
    tensor_dtype: str | None = None
    unknown_categories: str = "reject"
    columns: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(c.name for c in self.inputs))
        if self.unknown_categories not in UNKNOWN_CATEGORIES:
            raise InvalidInputError(field="unknown_categories", value=self.unknown_categories,
                                    expected=f"one of {list(UNKNOWN_CATEGORIES)}")

    # ---------------------------------------------------------------- (de)serialization
    def to_dict(self) -> dict[str, Any]:
        out = {"input_kind": self.input_kind, "tensor_dtype": self.tensor_dtype,
               "inputs": [c.to_dict() for c in self.inputs],
               "outputs": [{**asdict(o), "shape": list(o.shape)} for o in self.outputs]}
        if any(c.type == "category" for c in self.inputs):
            out["unknown_categories"] = self.unknown_categories
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        """Rebuild a signature from ``to_dict`` output, checking every field."""
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), list):
            raise InvalidInputError(field="signature", value=data, expected="a mapping with an 'inputs' list")
        inputs = [ColumnSpec.from_dict(col, f"signature.inputs[{i}]") for i, col in enumerate(data["inputs"])]
        outputs = tuple(OutputSpec(name=str(o["name"]), type=str(o["type"]), shape=tuple(o.get("shape") or (-1,)))
                        for o in data.get("outputs") or [])
        kind = data.get("input_kind") or "frame"
        if kind not in ("frame", "tensor"):
            raise InvalidInputError(field="signature.input_kind", value=kind, expected="'frame' or 'tensor'")
        policy = data.get("unknown_categories", "reject")
        if policy not in UNKNOWN_CATEGORIES:
            raise InvalidInputError(field="signature.unknown_categories", value=policy,
                                    expected=f"one of {list(UNKNOWN_CATEGORIES)}")
        return cls(inputs=tuple(inputs), outputs=outputs, input_kind=kind, tensor_dtype=data.get("tensor_dtype"),
                   unknown_categories=policy)

    # ---------------------------------------------------------------- enforcement
    def validate(self, data: Any) -> list[FieldError]:
        """Every problem of ``data`` against the inputs, as a list (empty when it conforms); never raises."""
        try:
            frame = to_frame(data, self)
        except InvalidInputError as exc:
            return [FieldError(field=exc.field or "data", expected=exc.expected or "", value=exc.value, row=None,
                               message=exc.message)]
        errors: list[FieldError] = []
        for spec in self.inputs:
            if spec.name not in frame.columns:
                errors.append(FieldError(field=spec.name, expected=spec.type, value=None, row=None,
                                         message=f"column '{spec.name}' is missing (expected {spec.type})"))
                continue
            found = _check_column(spec, frame[spec.name], self.unknown_categories)
            if found is not None:
                errors.append(found)
        return errors

    def enforce(self, data: Any) -> pd.DataFrame:
        """``data`` as a frame with exactly the signature's columns and types; InvalidInputError otherwise."""
        try:
            data = to_frame(data, self)
        except InvalidInputError:
            pass  # validate() below reports it with the signature's wording
        fast = self._already_conforming(data)
        if fast is not None:
            return fast
        errors = self.validate(data)
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more: {'; '.join(e.message for e in errors[1:4])})" if errors[1:] else ""
            raise InvalidInputError(f"Input does not match the model signature: {first.message}{more}",
                                    field=first.field, value=first.value, expected=first.expected)
        frame = to_frame(data, self)
        return pd.DataFrame({spec.name: _cast(spec, frame[spec.name]) for spec in self.inputs})


    def _already_conforming(self, data: Any) -> pd.DataFrame | None:
        """The common case in one pass: a frame whose numeric columns already have the exact dtypes and no
        nulls where none are allowed. None sends the caller down the column-by-column path."""
        if not isinstance(data, pd.DataFrame) or not self.inputs:
            return None
        dtypes = data.dtypes
        floats = []
        categories = []
        for spec in self.inputs:
            dtype = dtypes.get(spec.name)
            if spec.type == "category" and _same_categories(dtype, spec):
                if not spec.nullable:
                    categories.append(spec.name)
                continue
            if dtype is None or spec.type not in _FAST_DTYPES or dtype != _FAST_DTYPES[spec.type]:
                return None
            if spec.type == "float" and not spec.nullable:
                floats.append(spec.name)
        # Check each float column's own array: selecting a sub-frame first costs ~0.7 ms per call
        # (a pandas take), which dominates single-row predicts.
        if any(np.isnan(data[name].to_numpy()).any() for name in floats) or \
                any((data[name].cat.codes.to_numpy() < 0).any() for name in categories):
            return None
        return data if tuple(data.columns) == self.columns else data[list(self.columns)]


_FAST_DTYPES = {"float": np.dtype("float64"), "integer": np.dtype("int64"), "boolean": np.dtype("bool")}


def to_frame(data: Any, signature: Signature | None = None) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a NumPy array, a list of records or a dict of columns."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame().T if signature and data.name not in signature.columns else data.to_frame()
    if isinstance(data, np.ndarray):
        arr = data.reshape(1, -1) if data.ndim == 1 else data
        if arr.ndim != 2:
            raise InvalidInputError(field="data", value=f"array of shape {data.shape}",
                                    expected="a 2-D array (rows x columns)")
        names = list(signature.columns) if signature else [str(i) for i in range(arr.shape[1])]
        if arr.shape[1] != len(names):
            raise InvalidInputError(field="data", value=f"array with {arr.shape[1]} columns",
                                    expected=f"{len(names)} columns in the order {names}")
        return pd.DataFrame({n: arr[:, i] for i, n in enumerate(names)})
    if isinstance(data, dict):
        data = [data] if all(np.ndim(v) == 0 for v in data.values()) else data
        return pd.DataFrame(data)
    if isinstance(data, list | tuple):
        if not data or all(isinstance(r, dict) for r in data):
            return pd.DataFrame.from_records(list(data)) if data else pd.DataFrame(columns=list(
                signature.columns if signature else []))
        return to_frame(np.asarray(data, dtype=object), signature)
    raise InvalidInputError(field="data", value=type(data).__name__,
                            expected="a pandas DataFrame, a NumPy array, a list of records or a dict of columns")


def logical_type(series: pd.Series) -> str:
    """The logical type of a column from its dtype (object columns are looked at)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return logical_type(pd.Series(dtype.categories))
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    return {"integer": "integer", "floating": "float", "mixed-integer-float": "float", "boolean": "boolean",
            "datetime64": "datetime", "datetime": "datetime", "decimal": "float"}.get(inferred, "string")


def infer_signature(example: Any, output: Any = None, *, training_data: Any = None,
                    unknown_categories: str = "reject") -> Signature:
    """Infer a signature from an input example (and optionally an output sample and the training data).

    The columns are the example's. With ``training_data`` (the frame the model was fitted on,
    or a ``mloop.validation.Schema`` of it), each column's nullability is the training data's:
    nullable when it held nulls. Without it, ``float`` and ``category`` columns are nullable
    (a few example rows say nothing about nulls in real data, and a model can be handed NaN
    there) and the other types are nullable only when the example holds a null.
    ``unknown_categories`` ("reject" or "missing") is what a value outside a category
    column's categories gets.

    >>> import numpy as np, pandas as pd
    >>> infer_signature(np.zeros((3, 2), dtype="float32")).input_kind
    'tensor'
    >>> sig = infer_signature(pd.DataFrame({"km": [1.5], "zone": pd.Categorical(["a"], categories=["a", "b"])}))
    >>> [(c.name, c.type, c.nullable, c.categories) for c in sig.inputs]
    [('km', 'float', True, None), ('zone', 'category', True, ('a', 'b'))]
    """
    kind: Literal["frame", "tensor"] = "tensor" if isinstance(example, np.ndarray) else "frame"
    frame = to_frame(example)
    nulls = _training_nulls(training_data, frame.columns) if training_data is not None else {}
    inputs = tuple(_column_spec(str(c), frame[c], nulls.get(c)) for c in frame.columns)
    dtype = str(np.asarray(example).dtype) if kind == "tensor" else None
    return Signature(inputs=inputs, outputs=_outputs(output), input_kind=kind, tensor_dtype=dtype,
                     unknown_categories=unknown_categories)


def _training_nulls(training: Any, names: Any) -> dict[Any, pd.Series | bool]:
    """Per example column: the training column (a Series), or the schema's ``nullable`` (a bool)."""
    if hasattr(training, "columns") and isinstance(training.columns, dict):  # a mloop.validation Schema
        return {c: bool(training.columns[str(c)].nullable) for c in names if str(c) in training.columns}
    frame = to_frame(training)
    return {c: frame[c] for c in names if c in frame.columns}


def _column_spec(name: str, example: pd.Series, training: pd.Series | bool | None) -> ColumnSpec:
    source = training if isinstance(training, pd.Series) else example
    categories = _categories(source)
    kind = "category" if categories is not None else logical_type(source)
    if isinstance(training, pd.Series):
        nullable = bool(training.isna().any())
    elif isinstance(training, bool):
        nullable = training
    else:
        nullable = kind in ("float", "category") or bool(example.isna().any())
    if categories is None:
        return ColumnSpec(name=name, type=kind, nullable=nullable)
    return ColumnSpec(name=name, type=kind, nullable=nullable, categories=categories,
                      ordered=bool(source.dtype.ordered))


def _categories(series: pd.Series) -> tuple[Any, ...] | None:
    """A category column's categories as plain Python values (None when not a category column, or when its
    categories are of a kind JSON cannot carry, such as timestamps: such a column keeps its values' type)."""
    if not isinstance(series.dtype, pd.CategoricalDtype):
        return None
    values = series.dtype.categories.tolist()
    if len(values) > MAX_CATEGORIES or not all(type(v) in _CATEGORY_VALUE for v in values):
        return None
    return tuple(values)


def _outputs(output: Any) -> tuple[OutputSpec, ...]:
    if output is None:
        return ()
    if isinstance(output, pd.DataFrame):
        return tuple(OutputSpec(name=str(c), type=logical_type(output[c])) for c in output.columns)
    arr = np.asarray(output)
    kind = logical_type(pd.Series(arr.reshape(-1)[:1000]))
    return (OutputSpec(name="prediction", type=kind, shape=(-1, *arr.shape[1:])),)


def _check_column(spec: ColumnSpec, col: pd.Series, unknown_categories: str = "reject") -> FieldError | None:
    """The first bad value of one column (vectorized), or None."""
    nulls = col.isna().to_numpy()
    if nulls.any() and not spec.nullable:
        row = int(np.argmax(nulls))
        return _error(spec, None, row, f"column '{spec.name}': null at row {row}, but it is not nullable")
    if spec.type == "category":
        if unknown_categories == "missing" and spec.nullable:
            return None  # any value outside the categories is read as missing
        # not nullable: the model never saw a null here, so an unknown value cannot be read as missing either
        bad = ~col.isin(spec.categories or ()).to_numpy() & ~nulls
    else:
        bad = _bad_mask(spec.type, col) & ~nulls
    if bad.any():
        row = int(np.argmax(bad))
        value = col.iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        return _error(spec, value, row, bad_value_message(spec, value, row))
    return None


def bad_value_message(spec: ColumnSpec, value: Any, row: int) -> str:
    """The message for a value of the wrong type, or outside a category column's categories."""
    if spec.type == "category":
        return (f"column '{spec.name}': {value!r} is not one of the categories the model was trained on (row {row});"
                f" expected one of {_preview(spec.categories or ())}")
    return f"column '{spec.name}': expected {spec.type}, got {value!r} (row {row})"


def _error(spec: ColumnSpec, value: Any, row: int, message: str) -> FieldError:
    return FieldError(field=spec.name, expected=spec.expected(), value=value, row=row, message=message)


def _bad_mask(kind: str, col: pd.Series) -> np.ndarray:
    dtype = col.dtype
    if kind == "string":
        if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
            return np.zeros(len(col), dtype=bool)
        if pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):  # C fast path: all strings
            return np.zeros(len(col), dtype=bool)
        return ~_is_text(col)
    if kind == "datetime":
        return pd.to_datetime(col, errors="coerce", utc=True).isna().to_numpy()
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(dtype):
            return np.zeros(len(col), dtype=bool)
        return ~col.isin([True, False, 0, 1]).to_numpy()
    if pd.api.types.is_bool_dtype(dtype):
        return np.ones(len(col), dtype=bool)
    numbers = pd.to_numeric(col, errors="coerce") if not pd.api.types.is_numeric_dtype(dtype) else col
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    bad = np.isnan(values)
    if kind == "integer":
        with np.errstate(invalid="ignore"):
            bad |= ~np.isnan(values) & (values != np.round(values))
    if not pd.api.types.is_numeric_dtype(dtype) and pd.api.types.infer_dtype(col, skipna=True) not in _NUMERIC:
        bad |= _is_text(col)  # strings such as "3" are not numbers
    return bad


_NUMERIC = ("integer", "floating", "mixed-integer-float", "decimal", "empty")


def _is_text(col: pd.Series) -> np.ndarray:
    """Which values are str/bytes; only reached on the slow path, when a column already has a bad value."""
    return np.fromiter((isinstance(v, str | bytes) for v in col.to_numpy()), bool, len(col))


def _cast(spec: ColumnSpec, col: pd.Series) -> pd.Series:
    if spec.type == "float":
        return col.astype("float64")
    if spec.type == "integer":
        return col.astype("Int64" if col.isna().any() else "int64")
    if spec.type == "boolean":
        return col.astype("boolean" if col.isna().any() else "bool")
    if spec.type == "datetime":
        return pd.to_datetime(col, utc=True)
    if spec.type == "category":  # by value: a Parquet dictionary's own order or a JSON string becomes the model's code
        if _same_categories(col.dtype, spec):
            return col
        # not astype: it keeps an unordered column's own order when the categories are the same set
        return pd.Series(pd.Categorical(col, dtype=spec.dtype), index=col.index, name=col.name)
    return col


def _same_categories(dtype: Any, spec: ColumnSpec) -> bool:
    """The exact categories in the exact order (``==`` on unordered dtypes ignores the order, the codes do not)."""
    return isinstance(dtype, pd.CategoricalDtype) and bool(dtype.ordered) == spec.ordered \
        and dtype.categories.tolist() == list(spec.categories or ())
