"""Traffic for monitors: prediction-log files in the serving log's own layout, at chosen times."""

from __future__ import annotations

import io
import os
import uuid
from datetime import UTC, datetime

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.config import Settings
from mloop.serving.predlog import ERRORS, FEEDBACK, PREFIX, _error_table
from mloop.store.blob import open_blob_store

T0 = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # the night US clocks moved forward: windows are UTC all the same


def _key(folder: str, written: pd.Timestamp) -> str:
    return (f"{PREFIX}/{folder}/{written.strftime('%Y-%m-%d')}/{written.strftime('%H%M%S%f')}-{os.getpid()}-"
            f"{uuid.uuid4().hex[:8]}.parquet")


def write_predictions(settings: Settings, model: str, rows: pd.DataFrame, inputs: list[str]) -> None:
    """Store ``rows`` (id, time, version, role, latency_ms, output, proba + inputs) as the serving log does: one
    file per minute of traffic, each named by the time it was written (just after its last row)."""
    blobs = open_blob_store(settings.artifact_root)
    minute = rows["time"].dt.floor("min")
    for _, part in rows.groupby(minute, sort=True):
        n = len(part)
        struct = pa.StructArray.from_arrays([pa.array(part[c], from_pandas=True) for c in inputs], names=inputs)
        table = pa.table({
            "id": pa.array(part["id"].tolist(), pa.string()),
            "time": pa.array(part["time"].astype("int64") // 1_000_000, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "model": pa.array([model] * n, pa.string()), "version": pa.array(part["version"].tolist(), pa.string()),
            "role": pa.array(part["role"].tolist(), pa.string()), "inputs": struct,
            "output": pa.array([orjson.dumps(v).decode() for v in part["output"]], pa.string()),
            "latency_ms": pa.array(part["latency_ms"].tolist(), pa.float64()),
            "proba": pa.array(part["proba"].tolist() if "proba" in part else [None] * n, pa.string())})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        blobs.put_bytes(_key(model, part["time"].max() + pd.Timedelta(seconds=2)), sink.getvalue())


def write_errors(settings: Settings, model: str, failed: pd.DataFrame) -> None:
    """Requests answered with an error (time, version, role, status), one error-log file per minute as the serving
    log writes them."""
    minute = failed["time"].dt.floor("min")
    for _, part in failed.groupby(minute, sort=True):
        table = _error_table([(uuid.uuid4().hex, int(t.value // 1_000_000), model, v, r, int(s), 1.0)
                              for t, v, r, s in zip(part["time"], part["version"], part["role"], part["status"],
                                                    strict=True)])
        sink = io.BytesIO()
        pq.write_table(table, sink)
        open_blob_store(settings.artifact_root).put_bytes(_key(ERRORS, part["time"].max() + pd.Timedelta(seconds=2)),
                                                          sink.getvalue())


def write_labels(settings: Settings, ids: list[str], labels: list, written: pd.Timestamp) -> None:
    """Feedback labels as ``POST /feedback`` stores them, written at ``written``."""
    table = pa.table({"id": ids, "time": [int(written.value // 1_000_000)] * len(ids),
                      "label": [orjson.dumps(v).decode() for v in labels]},
                     schema=pa.schema([("id", pa.string()), ("time", pa.timestamp("ms", tz="UTC")),
                                       ("label", pa.string())]))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    open_blob_store(settings.artifact_root).put_bytes(_key(FEEDBACK, written), sink.getvalue())


@pytest.fixture
def settings(tmp_path, db_url: str) -> Settings:
    return Settings.load(home=str(tmp_path / "home"), db_url=db_url)


def rng() -> np.random.Generator:
    return np.random.default_rng(7)
