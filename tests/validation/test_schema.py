"""Schema inference, editing and (de)serialization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mloop.errors import InvalidInputError
from mloop.validation import Schema, infer_schema, load_schema


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3, 4],
        "hour": [0, 5, 23, 7],
        "fare": [2.5, np.nan, 7.0, 3.25],
        "weather": ["rain", "clear", "rain", "rain"],
        "comment": ["a", "bb", "ccc", None],
        "ok": [True, False, True, True],
        "ts": pd.date_range("2026-01-01", periods=4, freq="h", tz="UTC"),
    })


def test_infers_types_nulls_ranges_categories_lengths_uniqueness(frame: pd.DataFrame) -> None:
    s = infer_schema(frame, max_categories=2)
    assert {c.name: c.type for c in s} == {"id": "integer", "hour": "integer", "fare": "float", "weather": "string",
                                           "comment": "string", "ok": "boolean", "ts": "datetime"}
    assert (s["hour"].min, s["hour"].max) == (0, 23)
    assert s["fare"].nullable and s["fare"].null_share == 0.25 and not s["hour"].nullable
    assert s["weather"].categories == ["clear", "rain"]
    assert s["comment"].categories is None and (s["comment"].min_length, s["comment"].max_length) == (1, 3)
    assert s["id"].unique and not s["ok"].unique
    assert s["ok"].categories == [False, True]
    assert s["ts"].min.startswith("2026-01-01T00:00:00")
    assert s.rows == 4


def test_same_schema_from_pandas_arrow_and_parquet(frame: pd.DataFrame, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f.parquet"
    frame.to_parquet(path)
    a, b, c = infer_schema(frame), infer_schema(pa.Table.from_pandas(frame)), infer_schema(path)
    assert a.to_dict() == b.to_dict() == c.to_dict()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_with_version_and_edits(frame: pd.DataFrame, tmp_path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    s = infer_schema(frame)
    s["hour"].max = 22
    s["fare"].severity["range"] = "warn"
    path = s.save(tmp_path / f"schema{suffix}")
    again = load_schema(path)
    assert again == s and again.version == 1 and again["hour"].max == 22
    assert "version: 1" in path.read_text() or '"version": 1' in path.read_text()


def test_bad_schemas_say_what_is_wrong(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="type"):
        Schema.from_dict({"version": 1, "columns": {"x": {"type": "complex"}}})
    with pytest.raises(InvalidInputError, match="upgrade mloop"):
        Schema.from_dict({"version": 99, "columns": {}})
    with pytest.raises(InvalidInputError, match="maximum"):
        Schema.from_dict({"version": 1, "columns": {"x": {"type": "float", "maximum": 3}}})
    with pytest.raises(InvalidInputError, match="severity"):
        Schema.from_dict({"version": 1, "columns": {"x": {"type": "float", "severity": {"range": "loud"}}}})
    with pytest.raises(InvalidInputError, match="existing"):
        load_schema(tmp_path / "missing.yaml")


def test_edge_frames() -> None:
    empty = infer_schema(pd.DataFrame({"x": pd.Series([], dtype="float64"), "s": pd.Series([], dtype=object)}))
    assert empty["x"].type == "float" and empty["x"].min is None
    nulls = infer_schema(pd.DataFrame({"x": [None, None]}, dtype=object))
    assert nulls["x"].nullable and nulls["x"].null_share == 1.0
    inf = infer_schema(pd.DataFrame({"x": [1.0, np.inf, -2.0]}))
    assert inf["x"].allow_inf and (inf["x"].min, inf["x"].max) == (-2.0, 1.0)
    assert infer_schema(pd.DataFrame({"x": [1.0, 3.0]}), range_slack=0.5)["x"].min == 0.0


def test_column_without_a_type_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="at least 'type'"):
        Schema.from_dict({"version": 1, "columns": {"x": None}})
