"""The prediction log's buffer: the requests of one model and input set, turned into an Arrow table by the
writer thread with no Python loop over them.

Why it matters: the writer shares the GIL with the event loop. Python work in the writer (a loop over a
second's worth of requests) holds the GIL in 5 ms slices, and every time the event loop lets go of it (each
socket read and write) it waits for the next slice; at 64 concurrent requests that multiplied the p99. Here
a request only appends one tuple (on the request path, where it waits for nobody), and the writer transposes
the batch with loops that run inside C (zip, map, itertools, NumPy, Arrow), not Python bytecode.

>>> batch = Batch("eta", ("km",))
>>> batch.add(1700000000.0, "3", "primary", "r1", {"km": [2.0, 4.0]}, [7.5, 9.0], [None, None], 0.001)
>>> batch.table().to_pydict()["id"]
['r1-0', 'r1-1']
"""

from __future__ import annotations

from functools import partial
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

_MS = pa.timestamp("ms", tz="UTC")


class Batch:
    """The predictions of one model with one set of input columns; not thread-safe (the log holds its lock
    around ``add`` and swaps the whole batch out before ``table``)."""

    __slots__ = ("model", "names", "entries", "rows")

    def __init__(self, model: str, names: tuple[str, ...]) -> None:
        self.model = model
        self.names = names
        self.entries: list[tuple[Any, ...]] = []
        self.rows = 0

    def add(self, ts: float, version: str, role: str, request_id: str, columns: dict[str, list[Any]],
            outputs: list[Any], proba: list[str | None], seconds: float) -> None:
        """Append one request of ``len(outputs)`` rows (``proba``: the rows' probabilities as JSON text)."""
        self.entries.append((ts, version, role, request_id, columns, outputs, proba, seconds, len(outputs)))
        self.rows += len(outputs)

    def table(self) -> pa.Table:
        """The batch as the log's Parquet table: one row per prediction, ids ``<request id>-<row>``.

        Every loop over the requests runs inside C (zip, map, itertools, NumPy, Arrow): no Python bytecode
        per request, so the GIL is held for short stretches only (see the module's docstring)."""
        n = self.rows
        times, versions, roles, request_ids, columns, outputs, proba, seconds, counts = zip(*self.entries,
                                                                                               strict=True)
        count = np.asarray(counts, dtype=np.int64)
        owner = None if n == len(count) else np.repeat(np.arange(len(count)), count)  # each row's request

        def per_row(values: pa.Array) -> pa.Array:
            return values if owner is None else values.take(owner)

        if owner is None:  # the common case: one row per request
            position: Any = pa.scalar("0")
        else:
            position = pa.array(np.arange(n) - (np.cumsum(count) - count)[owner]).cast(pa.string())
        ids = pc.binary_join_element_wise(per_row(pa.array(request_ids, pa.string())), position, "-")
        millis = (np.asarray(times) * 1000).astype(np.int64)
        return pa.table({"id": ids,
                         "time": per_row(pa.array(millis, pa.int64())).cast(_MS),
                         "model": pa.repeat(pa.scalar(self.model, pa.string()), n),
                         "version": per_row(pa.array(versions, pa.string())),
                         "role": per_row(pa.array(roles, pa.string())),
                         "inputs": self._inputs(columns, n),
                         "output": _json_column(list(chain.from_iterable(outputs))),
                         "latency_ms": per_row(pa.array(np.asarray(seconds) * 1000, pa.float64())),
                         "proba": pa.array(list(chain.from_iterable(proba)), pa.string())})

    def _inputs(self, columns: tuple[dict[str, list[Any]], ...], n: int) -> pa.Array:
        if not self.names:  # Parquet cannot store a struct without fields: the inputs' JSON text instead
            return pa.repeat(pa.scalar("{}", pa.string()), n)
        arrays = [_arrow(list(chain.from_iterable(map(itemgetter(name), columns)))) for name in self.names]
        return pa.StructArray.from_arrays(arrays, names=list(self.names))


_DUMPS = partial(orjson.dumps, option=orjson.OPT_SERIALIZE_NUMPY)


def _json_column(values: list[Any]) -> pa.Array:
    """Each value as JSON text: ``map`` over orjson runs in C; the rare value JSON cannot hold is kept as its
    quoted ``str``, found by the slow path."""
    try:
        encoded = list(map(_DUMPS, values))
    except (TypeError, orjson.JSONEncodeError):
        return pa.array([_json_or_str(v) for v in values], pa.string())
    return pa.array(encoded, pa.binary()).cast(pa.string())


def _json_or_str(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(str(value)).decode()


def proba_texts(proba: list[list[float]], classes: list[Any] | None) -> list[str | None]:
    """Each row's probabilities as ``{"class": p}`` JSON text (class labels become the keys' text)."""
    keys = [str(c) for c in (classes or range(len(proba[0]) if proba else 0))]
    return [orjson.dumps(dict(zip(keys, row, strict=False)), option=orjson.OPT_SERIALIZE_NUMPY).decode()
            for row in proba]


def _arrow(values: list[Any]) -> pa.Array:
    """One input column as Arrow; values Arrow cannot type together are kept as JSON text."""
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pa.array([None if v is None else orjson.dumps(v).decode() for v in values], pa.string())
