"""The prediction log's buffer: the requests of one model and input set, turned into an Arrow table by the
writer thread with no Python loop over them.

Why it matters: the writer shares the GIL with the event loop. Python work in the writer (a loop over a
second's worth of requests) holds the GIL in 5 ms slices, and every time the event loop lets go of it (each
socket read and write) it waits for the next slice; at 64 concurrent requests that multiplied the p99. Here
a request appends its rows to the batch's columns on the request path (microseconds, while its data is still
in the CPU's cache, and waiting for nobody), and the writer hands whole columns to Arrow and NumPy, whose loops
run in C: a second's worth of requests becomes a table in a few milliseconds of GIL, not in 5 ms slices.

>>> batch = Batch("eta", ("km",))
>>> batch.add(1700000000.0, "3", "primary", "r1", {"km": [2.0, 4.0]}, ["7.5", "9.0"], [None, None], 0.001)
>>> batch.table().to_pydict()["id"]
['r1-0', 'r1-1']
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

_MS = pa.timestamp("ms", tz="UTC")


class Batch:
    """The predictions of one model with one set of input columns, as columns; not thread-safe (the log holds
    its lock around ``add`` and swaps the whole batch out before ``table``)."""

    __slots__ = ("model", "names", "request_ids", "times", "versions", "roles", "seconds", "counts", "outputs",
                 "proba", "inputs", "rows")

    def __init__(self, model: str, names: tuple[str, ...]) -> None:
        self.model = model
        self.names = names
        # one entry per request
        self.request_ids: list[str] = []
        self.times: list[float] = []
        self.versions: list[str] = []
        self.roles: list[str] = []
        self.seconds: list[float] = []
        self.counts: list[int] = []
        # one entry per predicted row
        self.outputs: list[str] = []
        self.proba: list[str | None] = []
        self.inputs: list[list[Any]] = [[] for _ in names]
        self.rows = 0

    def add(self, ts: float, version: str, role: str, request_id: str, columns: dict[str, list[Any]],
            outputs: list[str], proba: list[str | None], seconds: float) -> None:
        """Append one request of ``len(outputs)`` rows (outputs and probabilities as JSON text)."""
        self.request_ids.append(request_id)
        self.times.append(ts)
        self.versions.append(version)
        self.roles.append(role)
        self.seconds.append(seconds)
        self.counts.append(len(outputs))
        self.outputs.extend(outputs)
        self.proba.extend(proba)
        # each input column onto its own: one loop inside C, however many columns
        deque(map(list.extend, self.inputs, map(columns.__getitem__, self.names)), maxlen=0)
        self.rows += len(outputs)

    def table(self) -> pa.Table:
        """The batch as the log's Parquet table: one row per prediction, ids ``<request id>-<row>``.

        Whole columns go to Arrow and NumPy, which loop in C: no Python bytecode per request or row, so the
        GIL is held in short stretches only (see the module's docstring)."""
        n = self.rows
        count = np.asarray(self.counts, dtype=np.int64)
        owner = None if n == len(count) else np.repeat(np.arange(len(count)), count)  # each row's request

        def per_row(values: pa.Array) -> pa.Array:
            return values if owner is None else values.take(owner)

        if owner is None:  # the common case: one row per request
            position: Any = pa.scalar("0")
        else:
            position = pa.array(np.arange(n) - (np.cumsum(count) - count)[owner]).cast(pa.string())
        ids = pc.binary_join_element_wise(per_row(pa.array(self.request_ids, pa.string())), position, "-")
        millis = (np.asarray(self.times) * 1000).astype(np.int64)
        return pa.table({"id": ids,
                         "time": per_row(pa.array(millis, pa.int64())).cast(_MS),
                         "model": pa.repeat(pa.scalar(self.model, pa.string()), n),
                         "version": per_row(pa.array(self.versions, pa.string())),
                         "role": per_row(pa.array(self.roles, pa.string())),
                         "inputs": self._inputs(n),
                         "output": pa.array(self.outputs, pa.string()),
                         "latency_ms": per_row(pa.array(np.asarray(self.seconds) * 1000, pa.float64())),
                         "proba": pa.array(self.proba, pa.string())})

    def _inputs(self, n: int) -> pa.Array:
        if not self.names:  # Parquet cannot store a struct without fields: the inputs' JSON text instead
            return pa.repeat(pa.scalar("{}", pa.string()), n)
        return pa.StructArray.from_arrays([_arrow(column) for column in self.inputs], names=list(self.names))


def json_texts(values: list[Any]) -> list[str]:
    """Each value as JSON text (NumPy scalars too); one JSON cannot hold is kept as its quoted ``str``."""
    dumps, option = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
    try:
        return [dumps(v, option=option).decode() for v in values]
    except (TypeError, orjson.JSONEncodeError):
        return [_json_or_str(v) for v in values]


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
