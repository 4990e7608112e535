"""Batch scoring into the prediction log, so a monitor watches batch outputs the way it watches online traffic.

Each scored chunk becomes one log file in the serving log's layout (``predictions/<model>/<day>/<written>-...``)
with role ``batch``: a chunk counts as one request of many rows, its scoring time as the latency; the rows get ids
``b<batch>.<chunk>-<row>``, also written to the output's ``prediction_id`` column, so labels sent later through
``POST /feedback`` (or ``PredictionLog.feedback``) join them.
"""

from __future__ import annotations

import io
import uuid

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.config import Settings
from mloop.serving._logfiles import new_key
from mloop.serving.predlog import PREFIX
from mloop.store.blob import open_blob_store

ROLE = "batch"
_ANSWERS = ("prediction", "model_version", "scored_at")


class BatchLog:
    """Writes each scored chunk of one batch run to the prediction log of ``model``."""

    def __init__(self, settings: Settings, model: str, version: str) -> None:
        self.blobs = open_blob_store(settings.artifact_root)
        self.model, self.version = model, version
        self.batch = uuid.uuid4().hex[:12]

    def ids(self, chunk: int, rows: int) -> pa.Array:
        return pa.array([f"b{self.batch}.{chunk}-{i}" for i in range(rows)], pa.string())

    def write(self, chunk: int, scored: pa.Table, seconds: float) -> None:
        """Log the rows of one scored chunk (its inputs, answer and scoring time)."""
        n = scored.num_rows
        if not n:
            return
        inputs = [c for c in scored.column_names if c not in _ANSWERS and not c.startswith("proba_")
                  and c != "prediction_id"]
        struct = pa.StructArray.from_arrays([scored.column(c).combine_chunks() for c in inputs], names=inputs) \
            if inputs else pa.nulls(n, pa.struct([]))
        table = pa.table({
            "id": self.ids(chunk, n), "time": scored.column("scored_at").combine_chunks(),
            "model": pa.array(np.full(n, self.model, dtype=object), pa.string()),
            "version": pa.array(np.full(n, self.version, dtype=object), pa.string()),
            "role": pa.array(np.full(n, ROLE, dtype=object), pa.string()), "inputs": struct,
            "output": _json_texts(scored), "latency_ms": pa.array(np.full(n, seconds * 1000.0)),
            "proba": _proba_texts(scored)})
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        self.blobs.put_bytes(new_key(f"{PREFIX}/{self.model}"), sink.getvalue())


def _json_texts(scored: pa.Table) -> pa.Array:
    """The ``prediction`` column as the log's JSON text (numbers as they print, text quoted)."""
    if "prediction" not in scored.column_names:
        return pa.nulls(scored.num_rows, pa.string())
    values = scored.column("prediction").to_pylist()
    return pa.array([None if v is None else orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY).decode()
                     for v in values], pa.string())


def _proba_texts(scored: pa.Table) -> pa.Array:
    """The ``proba_<class>`` columns as the log's ``{class: probability}`` JSON text per row."""
    columns = [c for c in scored.column_names if c.startswith("proba_")]
    if not columns:
        return pa.nulls(scored.num_rows, pa.string())
    classes = [c.removeprefix("proba_") for c in columns]
    matrix = np.column_stack([scored.column(c).to_numpy(zero_copy_only=False) for c in columns])
    return pa.array([orjson.dumps(dict(zip(classes, row.tolist(), strict=True))).decode() for row in matrix],
                    pa.string())
