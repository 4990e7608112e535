"""Artifact encodings: every value comes back equal, in the encoding that suits it, stored once."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.flows.artifacts import ArtifactStore
from mloop.store.blob import open_blob_store


@pytest.fixture
def cas(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(open_blob_store(str(tmp_path / "cas")))


def test_a_dataframe_of_every_common_dtype_round_trips_as_parquet(cas: ArtifactStore) -> None:
    n = 2_000
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "small": np.arange(n, dtype=np.int8) % 7,
            "nullable": pd.array([1, None] * (n // 2), dtype="Int64"),
            "text": pd.array(["a", None] * (n // 2), dtype="string"),
            "category": pd.Categorical(["u", "v"] * (n // 2)),
            "when": pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC"),
            "took": pd.to_timedelta(np.arange(n), unit="s"),
            "x": np.arange(n) / 3,
            "flag": np.arange(n) % 2 == 0,
        },
        index=pd.Index(np.arange(n) * 2, name="key"),
    )
    ref = cas.save(frame)
    assert ref.encoding == "parquet-pandas"
    pd.testing.assert_frame_equal(cas.load(ref), frame)


def test_integers_are_delta_packed_and_text_is_dictionary_lz4(cas: ArtifactStore, tmp_path: Path) -> None:
    n = 100_000
    ref = cas.save(pd.DataFrame({"id": np.arange(n), "x": np.random.default_rng(0).random(n), "s": ["k"] * n}))
    meta = pq.ParquetFile(pa.BufferReader(cas.get(ref.sha256))).metadata.row_group(0)
    columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in columns["id"].encodings and columns["id"].total_compressed_size < n // 10
    assert columns["x"].compression == "UNCOMPRESSED"
    assert columns["s"].compression in ("LZ4", "LZ4_RAW")
    assert "RLE_DICTIONARY" in columns["s"].encodings


def test_arrow_tables_round_trip_even_with_nested_and_duplicate_columns(cas: ArtifactStore) -> None:
    nested = pa.table({"s": [{"a": i, "b": str(i)} for i in range(50)], "l": [[i, i + 1] for i in range(50)],
                       "d": [decimal.Decimal("1.25")] * 50, "t": [dt.time(1, 2)] * 50})
    duplicate = pa.Table.from_arrays([pa.array(range(50)), pa.array(range(50, 100))], names=["a", "a"])
    for table in (nested, duplicate):
        ref = cas.save(table)
        assert ref.encoding == "parquet-arrow" and cas.load(ref).equals(table)


def test_values_parquet_cannot_hold_fall_back_to_pickle(cas: ArtifactStore) -> None:
    intervals = pa.table({"iv": pa.array([pa.MonthDayNano([1, 2, 3])] * 5, pa.month_day_nano_interval())})
    mixed = pd.DataFrame({"m": [1, "a", 2.5]})
    for value in (intervals, mixed):
        ref = cas.save(value)
        assert ref.encoding == "pickle"
        back = cas.load(ref)
        assert back.equals(value)


def test_large_equal_values_are_stored_once(cas: ArtifactStore) -> None:
    array = np.arange(1_000_000, dtype=np.float64)  # 8 MB: the hash runs beside the write
    first, second = cas.save(array), cas.save(array.copy())
    assert first == second and first.encoding == "npy" and first.size > 8_000_000
    assert cas.blobs.list("flows/cas") == [cas.key(first.sha256)]
    np.testing.assert_array_equal(cas.load(first), array)
