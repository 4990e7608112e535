"""Request bodies of the three protocols, parsed into columns (``{name: [values]}``) and a row count.

* ``/predict``: a record, a list of records, ``{"records": [...]}`` or ``{"columns": {name: [...]}}``.
* ``/invocations`` (MLflow scoring): ``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``.
* ``/v2/models/{name}/infer`` (Open Inference Protocol): named tensors, one per column, or one 2-D tensor.

A body that follows none of them raises ``PayloadError`` (HTTP 400); whether the values
fit the model is the signature's business (HTTP 422).

>>> to_columns([{"a": 1, "b": 2.5}, {"a": 2, "b": None}])
({'a': [1, 2], 'b': [2.5, None]}, 2)
>>> parse_invocations({"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}}, ())
({'a': [1, 2]}, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mloop.serving._inputs import Columns

__all__ = ["MAX_DEPTH", "PayloadError", "check_depth", "parse_invocations", "parse_predict", "parse_v2",
           "to_columns"]

# Requests nest a few levels (a body, its records, a tensor's rows); anything deeper is refused before
# the recursive steps after parsing (flattening tensors, the prediction log's JSON) can choke on it.
MAX_DEPTH = 32


class PayloadError(ValueError):
    """The body is not a request of this protocol (HTTP 400)."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def check_depth(body: Any) -> None:
    """PayloadError naming where lists and objects nest deeper than MAX_DEPTH (iterative: no stack to exhaust).

    Only containers are visited; each carries a link to its parent, so the path is spelled out only
    for the error.
    """
    if type(body) is not dict and type(body) is not list:
        return  # a scalar body nests nothing; the parser says what it expected instead
    stack: list[tuple[Any, int, Any]] = [(body, 1, None)]
    while stack:
        entry = stack.pop()
        item, depth = entry[0], entry[1]
        if depth > MAX_DEPTH:
            where = _path(entry)
            raise PayloadError(f"the body nests lists and objects more than {MAX_DEPTH} levels deep (at "
                               f"{where}); expected at most {MAX_DEPTH}", field=where)
        pairs = item.items() if type(item) is dict else enumerate(item)
        for key, child in pairs:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1, (entry, key)))


def _path(entry: Any) -> str:
    """``body.records[0].a`` for a stack entry of ``check_depth``, shortened for a message."""
    parts: list[str] = []
    while entry[2] is not None:
        entry, key = entry[2]
        parts.append(f".{key}" if isinstance(key, str) else f"[{key}]")
    text = "body" + "".join(reversed(parts))
    return text if len(text) <= 120 else text[:60] + "..." + text[-40:]


def to_columns(records: Any) -> tuple[Columns, int]:
    """Columns from a list of records (a key missing from a record reads as null)."""
    if not isinstance(records, list):
        raise PayloadError(f"expected a list of records, got {type(records).__name__}")
    if len(records) == 1 and type(records[0]) is dict:
        return {k: [v] for k, v in records[0].items()}, 1
    for i, r in enumerate(records):
        if type(r) is not dict:
            raise PayloadError(f"record {i} is {type(r).__name__}, expected an object of field: value",
                               field=f"records[{i}]")
    keys = dict.fromkeys(k for r in records for k in r)
    return {k: [r.get(k) for r in records] for k in keys}, len(records)


def _columns_of(mapping: dict[str, Any], where: str) -> tuple[Columns, int]:
    """Columns from ``{name: [values]}``, all of one length."""
    n = -1
    out: Columns = {}
    for k, v in mapping.items():
        if not isinstance(v, list):
            raise PayloadError(f"column '{k}' must be a list of values, got {type(v).__name__}",
                               field=f"{where}.{k}")
        if n not in (-1, len(v)):
            raise PayloadError(f"columns have different lengths ({n} and {len(v)} for '{k}')", field=where)
        n = len(v)
        out[k] = v
    return out, max(n, 0)


def _rows_of(rows: list[Any], columns: Sequence[str], where: str) -> tuple[Columns, int]:
    """Columns from positional rows (lists) in the order of ``columns``."""
    if not columns:
        raise PayloadError("positional rows need column names; send records or columns instead", field=where)
    width = len(columns)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise PayloadError(f"row {i} must be a list of {width} values in the order {list(columns)}",
                               field=f"{where}[{i}]")
    return {c: [row[j] for row in rows] for j, c in enumerate(columns)}, len(rows)


def _scalar_record(body: dict[str, Any]) -> bool:
    return all(not isinstance(v, list | dict) for v in body.values())


def parse_predict(body: Any) -> tuple[Columns, int]:
    """``/predict``: records or columns."""
    check_depth(body)
    if isinstance(body, list):
        return to_columns(body)
    if not isinstance(body, dict) or not body:
        raise PayloadError("expected a record, a list of records, {\"records\": [...]} or {\"columns\": {...}}")
    if "records" in body:
        return to_columns(body["records"])
    if "columns" in body:
        if not isinstance(body["columns"], dict):
            raise PayloadError("'columns' must be an object of name: [values]", field="columns")
        return _columns_of(body["columns"], "columns")
    if _scalar_record(body):
        return {k: [v] for k, v in body.items()}, 1
    if all(isinstance(v, list) for v in body.values()):
        return _columns_of(body, "body")
    raise PayloadError("expected a record, a list of records, {\"records\": [...]} or {\"columns\": {...}}")


_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_invocations(body: Any, columns: Sequence[str]) -> tuple[Columns, int]:
    """MLflow's scoring format: exactly one of dataframe_split, dataframe_records, instances, inputs."""
    check_depth(body)
    if not isinstance(body, dict):
        raise PayloadError(f"expected an object with one of {list(_MLFLOW_KEYS)}")
    found = [k for k in _MLFLOW_KEYS if k in body]
    if len(found) != 1:
        raise PayloadError(f"expected exactly one of {list(_MLFLOW_KEYS)}, got {sorted(body) or 'none'}")
    key = found[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise PayloadError("dataframe_split must be {\"columns\": [...], \"data\": [[...]]}", field=key)
        names = value.get("columns", columns)
        if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
            raise PayloadError("dataframe_split.columns must be a list of names", field=f"{key}.columns")
        return _rows_of(value["data"], names, f"{key}.data")
    if key == "dataframe_records":
        return to_columns(value)
    if isinstance(value, dict):  # inputs / instances as columns
        return _columns_of(value, key)
    if not isinstance(value, list):
        raise PayloadError(f"{key} must be a list of records or rows, or an object of columns", field=key)
    if value and all(isinstance(r, list) for r in value):
        return _rows_of(value, columns, key)
    return to_columns(value)


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list) and data and isinstance(data[0], list):
        return [x for row in data for x in _flatten(row)]
    if not isinstance(data, list):
        raise PayloadError("tensor data must be a list", field="inputs.data")
    return data


def parse_v2(body: Any, columns: Sequence[str]) -> tuple[Columns, int]:
    """Open Inference Protocol v2: one named 1-D tensor per column, or one [rows, columns] tensor."""
    check_depth(body)
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise PayloadError("expected {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}, ...]}")
    tensors = body["inputs"]
    for i, t in enumerate(tensors):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or "data" not in t:
            raise PayloadError("each input needs a name, a shape, a datatype and data", field=f"inputs[{i}]")
        shape = t.get("shape")
        if not isinstance(shape, list) or not shape or not all(type(s) is int and s >= 0 for s in shape):
            raise PayloadError("shape must be a list of non-negative integers", field=f"inputs[{i}].shape")
    if len(tensors) == 1 and tensors[0]["name"] not in columns and len(tensors[0]["shape"]) == 2:
        t = tensors[0]
        rows, width = t["shape"]
        flat = _flatten(t["data"])
        if len(flat) != rows * width:
            raise PayloadError(f"data has {len(flat)} values, shape {t['shape']} needs {rows * width}",
                               field="inputs[0].data")
        return _rows_of([flat[r * width:(r + 1) * width] for r in range(rows)], columns, "inputs[0]")
    out: Columns = {}
    n = -1
    for i, t in enumerate(tensors):
        flat = _flatten(t["data"])
        if len(flat) != t["shape"][0] or n not in (-1, len(flat)):
            raise PayloadError(f"input '{t['name']}' has {len(flat)} values; every input needs one per row "
                               f"(shape [{n if n >= 0 else len(flat)}])", field=f"inputs[{i}]")
        n = len(flat)
        out[t["name"]] = flat
    return out, n
