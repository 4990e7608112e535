"""validate(): the seed cases with their messages, edge frames, severities, and the tiny-frame fast path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.validation import DataValidationError, infer_schema, validate
from mloop.validation._data import SMALL_ROWS


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 500
    return pd.DataFrame({
        "hour": rng.integers(0, 24, n), "fare": rng.gamma(2, 3, n) + 1.0,
        "weather": rng.choice(["clear", "rain", "snow"], n), "trip_id": np.arange(n),
    })


@pytest.fixture(scope="module")
def schema(train: pd.DataFrame):  # type: ignore[no-untyped-def]
    return infer_schema(train)


def by_check(result) -> dict[tuple[str, str], object]:  # type: ignore[no-untyped-def]
    return {(v.column, v.check): v for v in result.violations}


def test_seed_cases_are_caught_with_helpful_messages(train: pd.DataFrame, schema) -> None:  # type: ignore[no-untyped-def]
    batch = train.head(50).copy()
    batch.loc[7, "hour"] = 77
    batch["fare"] = batch["fare"].round().astype("int64")
    batch.loc[3, "weather"] = "hail"
    batch = batch.drop(columns=["trip_id"])
    result = validate(batch, schema)
    found = by_check(result)
    assert set(found) == {("hour", "range"), ("fare", "type"), ("weather", "category"), ("trip_id", "missing_column")}
    hour = found[("hour", "range")]
    assert (hour.count, hour.samples) == (1, [{"row": 7, "value": 77}])
    assert hour.message == "hour: 1 of 50 rows (2.0%) outside the range [0, 23]; e.g. row 7: 77"
    assert "expected float values" in found[("fare", "type")].message and "astype('float64')" in found[
        ("fare", "type")].message
    assert "'hail'" in found[("weather", "category")].message and "'clear', 'rain', 'snow'" in found[
        ("weather", "category")].message
    assert "column is missing" in found[("trip_id", "missing_column")].message
    assert not result.passed
    with pytest.raises(DataValidationError) as err:
        result.raise_if_failed()
    assert "hour: 1 of 50 rows" in str(err.value) and err.value.error_code == "DATA_VALIDATION_FAILED"
    assert validate(train, schema).raise_if_failed().passed


def test_samples_are_capped_at_five_with_row_positions(schema) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"hour": [1, 99, 2, 98, 97, 96, 95, 94], "fare": 2.0, "weather": "rain",
                          "trip_id": range(8)}, index=list("abcdefgh"))
    v = by_check(validate(frame, schema))[("hour", "range")]
    assert v.count == 6 and abs(v.share - 0.75) < 1e-12
    assert [s["row"] for s in v.samples] == [1, 3, 4, 5, 6] and v.samples[0]["value"] == 99


def test_empty_all_null_nan_inf_and_mixed(schema) -> None:  # type: ignore[no-untyped-def]
    empty = pd.DataFrame({c: pd.Series([], dtype=t) for c, t in
                          [("hour", "int64"), ("fare", "float64"), ("weather", object), ("trip_id", "int64")]})
    assert validate(empty, schema).passed
    nulls = pd.DataFrame({"hour": [None, None], "fare": [np.nan, np.inf], "weather": [None, 3], "trip_id": [1, 2]})
    found = by_check(validate(nulls, schema))
    assert found[("hour", "not_null")].count == 2
    assert found[("fare", "not_null")].count == 1 and found[("fare", "finite")].samples == [{"row": 1, "value": np.inf}]
    assert found[("weather", "type")].samples == [{"row": 1, "value": 3}]
    mixed = pd.DataFrame({"hour": [1, "x", 3.5], "fare": ["1.5", "2", "abc"], "weather": "rain", "trip_id": [1, 2, 3]})
    found = by_check(validate(mixed, schema))
    assert found[("hour", "type")].samples[0] == {"row": 1, "value": "x"}
    assert found[("fare", "type")].samples == [{"row": 2, "value": "abc"}]


def test_integers_stored_as_float_pass_when_whole(schema) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"hour": [1.0, np.nan, 3.0], "fare": 2.0, "weather": "rain", "trip_id": [1, 2, 3]})
    assert ("hour", "type") not in by_check(validate(frame, schema))
    frame["hour"] = [1.5, 2.0, 3.0]
    assert by_check(validate(frame, schema))[("hour", "type")].samples == [{"row": 0, "value": 1.5}]


def test_severity_overrides_pattern_length_unique_extra(schema) -> None:  # type: ignore[no-untyped-def]
    from mloop.validation import Schema

    s = Schema.from_dict(schema.to_dict())
    s["hour"].severity["range"] = "warn"
    s["weather"].severity["category"] = "off"
    frame = pd.DataFrame({"hour": [77], "fare": [2.0], "weather": ["hail"], "trip_id": [1]})
    result = validate(frame, s)
    assert result.passed and [v.check for v in result.warnings] == ["range"]
    custom = Schema.from_dict({"version": 1, "allow_extra_columns": False, "columns": {
        "code": {"type": "string", "pattern": "[A-Z]{2}[0-9]+", "max_length": 4, "unique": True}}})
    found = by_check(validate(pd.DataFrame({"code": ["AB1", "ab2", "AB12345", "AB1"], "x": 1}), custom))
    assert found[("code", "pattern")].samples == [{"row": 1, "value": "ab2"}]
    assert found[("code", "length")].severity == "warn" and found[("code", "length")].count == 1
    assert [s["row"] for s in found[("code", "unique")].samples] == [0, 3]
    assert found[("x", "extra_column")].severity == "warn"


def test_arrow_and_parquet_inputs_match_pandas(train: pd.DataFrame, schema, tmp_path) -> None:  # type: ignore[no-untyped-def]
    batch = train.copy()
    batch.loc[[3, 9], "hour"] = [77, -1]
    batch.loc[5, "weather"] = "hail"
    batch.to_parquet(tmp_path / "b.parquet")
    expected = [v.to_dict() for v in validate(batch, schema).violations]
    assert [v.to_dict() for v in validate(pa.Table.from_pandas(batch), schema).violations] == expected
    assert [v.to_dict() for v in validate(tmp_path / "b.parquet", schema).violations] == expected


values = st.one_of(st.none(), st.integers(-5, 30), st.floats(allow_nan=True, allow_infinity=True, width=32),
                   st.sampled_from(["clear", "rain", "hail", ""]), st.booleans())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(values, values, values), min_size=1, max_size=SMALL_ROWS))
def test_tiny_frame_fast_path_agrees_with_vectorized_path(schema, rows) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame(rows, columns=["hour", "fare", "weather"])
    frame["trip_id"] = np.arange(len(frame))
    small = [{"column": v.column, "check": v.check, "count": v.count, "samples": v.samples}
             for v in validate(frame, schema).violations]
    big = pd.concat([frame] * (SMALL_ROWS // len(frame) + 1), ignore_index=True)  # over the fast-path size
    scale = len(big) // len(frame)
    wide = [v for v in validate(big.assign(trip_id=np.arange(len(big))), schema).violations]
    assert [(v["column"], v["check"]) for v in small] == [(v.column, v.check) for v in wide if v.check != "unique"]
    for s, w in zip(small, [v for v in wide if v.check != "unique"], strict=True):
        assert w.count == s["count"] * scale and repr(w.samples[0]) == repr(s["samples"][0])


def test_one_row_request_is_cheap(schema) -> None:  # type: ignore[no-untyped-def]
    import time

    one = pd.DataFrame({"hour": [3], "fare": [7.5], "weather": ["rain"], "trip_id": [1]})
    validate(one, schema)
    start = time.perf_counter()
    for _ in range(200):
        validate(one, schema)
    assert (time.perf_counter() - start) / 200 < 0.005  # ~0.1 ms here; loose bound for loaded CI machines


def test_json_records_and_lenient_numbers(schema) -> None:  # type: ignore[no-untyped-def]
    records = [{"hour": 3, "fare": 7, "weather": "rain", "trip_id": 1}]  # JSON: 7 could be 7.0
    assert [v.check for v in validate(records, schema).errors] == ["type"]
    assert validate(records, schema, strict_numbers=False).passed


def test_pandas_nullable_dtypes_on_both_paths() -> None:
    frame = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": pd.array([1.5, None, 2.0], dtype="Float64"),
                          "c": pd.array([True, None, False], dtype="boolean"), "d": pd.Categorical(["x", None, "y"]),
                          "e": pd.array(["s", None, "t"], dtype="string")})
    schema = infer_schema(frame)
    assert [(c.type, c.nullable) for c in schema] == [("integer", True), ("float", True), ("boolean", True),
                                                      ("string", True), ("string", True)]
    bad = frame.assign(a=pd.array([1, 99, None], dtype="Int64"), d=pd.Categorical(["x", "z", None]))
    for data in (bad, pd.concat([bad] * 10, ignore_index=True)):  # the tiny-frame path and the vectorized one
        found = by_check(validate(data, schema))
        assert found[("a", "range")].samples[0] == {"row": 1, "value": 99}
        assert found[("d", "category")].samples[0] == {"row": 1, "value": "z"}


def test_observed_float_range_warns_while_integer_range_rejects() -> None:
    schema = infer_schema(pd.DataFrame({"hour": [0, 12, 23], "distance_km": [0.5, 3.0, 9.5]}))
    result = validate(pd.DataFrame({"hour": [77], "distance_km": [12.0]}), schema)
    assert [(v.column, v.check) for v in result.errors] == [("hour", "range")]
    assert [(v.column, v.check) for v in result.warnings] == [("distance_km", "range")]
    assert not result.passed
    assert validate(pd.DataFrame({"hour": [5], "distance_km": [12.0]}), schema).passed


@pytest.mark.parametrize("rows", [10, 200])
def test_missing_text_values_are_not_unseen_categories(rows: int) -> None:
    """A text column's missing values fail the not-null check only, by a hash lookup (over 64 rows) or not."""
    schema = infer_schema(pd.DataFrame({"zone": ["north", "south"] * 10}))
    values = (["north", None, "moon", "south"] * rows)[:rows]
    result = validate(pd.DataFrame({"zone": pd.array(values, dtype="str")}), schema)
    counts = {v.check: v.count for v in result.violations}
    assert counts == {"category": values.count("moon"), "not_null": values.count(None)}
