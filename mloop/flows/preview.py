"""A look at a step's artifact without running code: what the web UI shows for a table, an array or a plain value.

Parquet tables (first rows and column types) and ``.npy`` arrays (shape, dtype, first values) are read with
readers that construct nothing but data. A pickle is loaded only when it holds plain values (numbers, text,
lists, dicts, ...): an unpickler that refuses every class and function never runs code, so anything else (a
model, a NumPy scalar, a custom object) is shown by its size and encoding only. Large artifacts are not read.

>>> from mloop.flows.artifacts import encode
>>> data, encoding = encode({"rmse": 4.2, "note": "ok"})
>>> preview(bytes(data), encoding)["value"]
{'rmse': 4.2, 'note': 'ok'}
>>> import fractions; data, encoding = encode(fractions.Fraction(1, 3))
>>> preview(bytes(data), encoding)["kind"]
'opaque'
"""

from __future__ import annotations

import io
import itertools
import pickle
from typing import Any

__all__ = ["MAX_PICKLE_BYTES", "MAX_READ_BYTES", "ROWS", "preview"]

ROWS = 20  # rows of a table, values of an array
MAX_READ_BYTES = 64 * 1024 * 1024  # tables and arrays larger than this are not read for a preview
MAX_PICKLE_BYTES = 1024 * 1024
_MAX_TEXT = 2000  # characters of one shown value
_MAX_ITEMS = 100  # items of one shown list or dict
_MAX_DEPTH = 8  # levels of nesting shown
_MAX_VALUES = 5000  # values shown in all, however they nest


class _PlainUnpickler(pickle.Unpickler):
    """Loads only what pickle builds by itself; the one door to code (a class or function by name) stays shut."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name}")


def preview(data: bytes, encoding: str) -> dict[str, Any]:
    """What a page may show of an artifact's ``data`` stored with ``encoding`` (see mloop.flows.artifacts)."""
    if encoding in ("parquet-pandas", "parquet-arrow"):
        return _table(data)
    if encoding == "npy":
        return _array(data)
    if encoding == "pickle" and len(data) <= MAX_PICKLE_BYTES:
        try:
            value = _PlainUnpickler(io.BytesIO(data)).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, RecursionError, MemoryError) as exc:
            return _opaque(f"a pickled object that needs {str(exc)[:200]} to load" if isinstance(
                exc, pickle.UnpicklingError) else "a pickled object")
        return {"kind": "value", "type": type(value).__name__, "value": _plain(value)}
    if encoding == "pickle":
        return _opaque(f"a pickle over {MAX_PICKLE_BYTES // 1024} KiB")
    return _opaque(f"the encoding {encoding!r}")


def _opaque(what: str) -> dict[str, Any]:
    return {"kind": "opaque", "reason": f"{what}: loading it could run code or is too large, so only its size "
                                        "and type are shown"}


def _table(data: bytes) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(pa.BufferReader(data))
    schema = source.schema_arrow
    first = next(source.iter_batches(batch_size=ROWS), None)
    rows = [] if first is None else [[_plain(v) for v in row.values()] for row in first.to_pylist()]
    return {"kind": "table", "rows_total": source.metadata.num_rows,
            "columns": [{"name": f.name, "type": str(f.type)} for f in schema], "rows": rows}


def _array(data: bytes) -> dict[str, Any]:
    import numpy as np

    array = np.load(io.BytesIO(data), allow_pickle=False)
    head = array.reshape(-1)[:ROWS] if array.ndim != 2 else array[:ROWS]
    return {"kind": "array", "shape": list(array.shape), "dtype": str(array.dtype), "values": _plain(head.tolist())}


def _plain(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """``value`` as JSON can carry it: numbers that JSON has, text cut to a readable length, containers cut to a
    few items and a few levels, the rest as text. At most ``_MAX_VALUES`` values are visited in all: a small
    pickle can hold a list of references to one list of references, nested, which would otherwise be walked
    ``_MAX_ITEMS ** _MAX_DEPTH`` times."""
    budget = [_MAX_VALUES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        return "…"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        return f"an integer of {value.bit_length()} bits"  # str() of a huge one is slow, then refused
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if depth >= _MAX_DEPTH and isinstance(value, list | tuple | set | frozenset | dict):
        return "…"
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1, budget) for v in itertools.islice(value, _MAX_ITEMS)]
    if isinstance(value, dict):
        return {str(_plain(k, _MAX_DEPTH, budget))[:200]: _plain(v, depth + 1, budget)
                for k, v in itertools.islice(value.items(), _MAX_ITEMS)}
    return str(value)[:_MAX_TEXT]
