"""The NumPy plan of the point-in-time join (``mloop.features.asof``) against DuckDB's two plans, on
realistic data: 240,000 feature rows in several row groups, string and integer keys with nulls, ties
on event time broken by the created time (some of them null), times in several zones, whole-second
and nanosecond times (a packed sort and an argsort), TTL edges, entity rows without a time. Each
case checks that the NumPy plan really ran, then that every value equals both DuckDB plans'."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mloop.features._payload as _payload
import mloop.features.asof as asof
import mloop.features.offline as offline
from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64, String

T0 = pd.Timestamp("2026-03-25 00:00", tz="Europe/Berlin")  # the spring change falls inside the data
TTL = timedelta(minutes=20)  # a key has a row every ~36 minutes: the TTL binds
FEATURES = ["visits:x", "visits:n", "visits:label"]


def _key_values(kind: str, codes: np.ndarray) -> Any:
    if kind == "string":
        return np.array([f"user-{c}" for c in codes], dtype=object)
    if kind == "wide":  # 64-bit ids: too far apart for the dense-range codes
        return (codes.astype(np.int64) * 7_919_000_000_007) % (2 ** 62)
    return codes.astype(np.int64)


def make_features(kind: str, precision: str, rows: int = 240_000, keys: int = 600, seed: int = 0) -> pd.DataFrame:
    """Feature rows over 10 days; 8% repeat a (key, event time) with a later created time, 5% have no
    created time, 2% no key; values with nulls."""
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, 10 * 86_400, rows) * 10 ** 9
    if precision == "ns":
        offsets = offsets + rng.integers(0, 10 ** 9, rows)
    event = T0.tz_convert("Asia/Kolkata") + pd.to_timedelta(offsets, unit="ns")
    codes = rng.integers(0, keys, rows)
    frame = pd.DataFrame({"user": _key_values(kind, codes), "event_timestamp": event.as_unit("ns"),
                          "created": (event + pd.to_timedelta(rng.integers(0, 600, rows), unit="s")).as_unit("ns"),
                          "x": np.where(rng.random(rows) < 0.1, np.nan, rng.random(rows)),
                          "n": pd.array(np.where(rng.random(rows) < 0.1, None, rng.integers(0, 99, rows)),
                                        dtype="Int64"),
                          "label": rng.choice(np.array(["a", "b", None], dtype=object), rows)})
    ties = frame.sample(frac=0.08, random_state=seed).assign(x=lambda f: f["x"] + 10, label="tie")
    ties["created"] = ties["created"] + pd.to_timedelta(rng.integers(1, 600, len(ties)), unit="s")
    frame.loc[frame.sample(frac=0.05, random_state=seed + 1).index, "created"] = pd.NaT
    frame = pd.concat([frame, ties], ignore_index=True).sample(frac=1, random_state=seed + 2, ignore_index=True)
    frame["user"] = frame["user"].astype(object)
    frame.loc[frame.sample(frac=0.02, random_state=seed + 3).index, "user"] = None
    # a full tie (key, event time and created time) has no one answer: keep one row of each
    return frame.drop_duplicates(["user", "event_timestamp", "created"], ignore_index=True)


def make_entities(features: pd.DataFrame, kind: str, rows: int = 60_000, seed: int = 1) -> pd.DataFrame:
    """Entity rows in New York time, from before the first feature row to after the last; 3% with a key
    no feature row has, 2% without a key or time; and rows exactly at, and one TTL after, feature times."""
    rng = np.random.default_rng(seed)
    when = T0 + pd.to_timedelta(rng.integers(-86_400, 11 * 86_400, rows) * 10 ** 9 + rng.integers(0, 10 ** 9, rows),
                                unit="ns")
    codes = rng.integers(0, 620, rows)  # 600..619: keys without any feature row
    frame = pd.DataFrame({"user": pd.Series(_key_values(kind, codes), dtype=object), "event_timestamp": when})
    frame.loc[frame.sample(frac=0.02, random_state=seed).index, "user"] = None
    frame.loc[frame.sample(frac=0.02, random_state=seed + 1).index, "event_timestamp"] = pd.NaT
    picked = features.dropna(subset=["user"]).sample(2_000, random_state=seed)[["user", "event_timestamp"]]
    picked["event_timestamp"] = picked["event_timestamp"].dt.tz_convert("Europe/Berlin")
    frame = pd.concat([frame, picked, picked.assign(event_timestamp=picked["event_timestamp"] + TTL),
                       picked.assign(event_timestamp=picked["event_timestamp"] + TTL + pd.Timedelta(1, "ns"))],
                      ignore_index=True)
    return frame.assign(event_timestamp=frame["event_timestamp"].dt.tz_convert("America/New_York"))


def _typed(frame: pd.DataFrame, kind: str) -> pa.Table:
    key = pa.string() if kind == "string" else pa.int64()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.set_column(0, "user", table.column("user").cast(key))


def _written(tmp_path: Path, kind: str, key_type: pa.DataType | None = None, **shape: Any) -> tuple[pd.DataFrame, Path]:
    """Generated feature rows (``shape``: rows, keys) and the Parquet file holding them (keys as ``key_type``)."""
    features = make_features(kind, "s", **shape)
    table = _typed(features, kind)
    if key_type is not None:
        table = table.set_column(0, "user", table.column("user").cast(key_type))
    pq.write_table(table, tmp_path / "visits.parquet")
    return features, tmp_path / "visits.parquet"


def _store(home: Path, path: Path, kind: str, ttl: timedelta | None = TTL) -> FeatureStore:
    store = FeatureStore(home=str(home))
    user = Entity("user", join_keys=["user"], key_types=[String if kind == "string" else Int64])
    store.apply([user, FeatureView("visits", entities=[user], source=FileSource(str(path)), created_timestamp="created",
                                   ttl=ttl, schema=[Field("x", Float64), Field("n", Int64), Field("label", String)])])
    return store


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each call of the NumPy plan answered (True) or declined (False)."""
    answered: list[bool] = []
    real = offline.asof_rows

    def spied(*args: Any) -> Any:
        rows = real(*args)
        answered.append(rows is not None)
        return rows

    monkeypatch.setattr(offline, "asof_rows", spied)
    return answered


def _by_each_plan(store: FeatureStore, entities: Any, monkeypatch: pytest.MonkeyPatch,
                  plans: tuple[str, ...] = ("asof", "buckets")) -> dict[str, pd.DataFrame]:
    """The training set by the NumPy plan (checked to have answered), then by DuckDB's ``plans``
    (the bucket plan needs a TTL), which carry the values through their joins: the NumPy plan's values
    are taken by row number from the file (``_payload.take_rows``), so that is checked too."""
    answered = _spy(monkeypatch)
    out = {"numpy": store.training_set(entities, FEATURES, log_to_run=False)}
    assert answered == [True], "the NumPy plan declined"
    monkeypatch.setattr(offline, "_try_numpy", lambda req: False)
    monkeypatch.setattr(offline, "_payload_mode", lambda con, req: ("values", None))
    for plan in plans:
        monkeypatch.setattr(offline, "_use_buckets", lambda *a, plan=plan: plan == "buckets")
        out[plan] = store.training_set(entities, FEATURES, log_to_run=False)
    return out


def _matched(frame: pd.DataFrame) -> float:
    """The share of entity rows that got a feature row (every value of one is null in 0.3% of rows)."""
    return float(frame[["x", "n", "label"]].notna().any(axis=1).mean())


def _same(results: dict[str, pd.DataFrame], least_matched: float = 0.3) -> None:
    numpy_plan = results.pop("numpy")
    for plan, frame in results.items():
        pd.testing.assert_frame_equal(numpy_plan, frame, check_exact=True, obj=f"numpy plan vs DuckDB {plan} plan")
    matched = _matched(numpy_plan)
    assert least_matched < matched < 0.95, matched  # the TTL nulls some rows, not all
    assert (numpy_plan["label"] == "tie").mean() > 0.015  # ties really were decided by the created time


@pytest.mark.parametrize(("kind", "precision", "group_rows"), [
    ("int", "s", 60_000), ("string", "s", 1_000_000), ("int", "ns", 1_000_000), ("string", "ns", 45_000),
    ("wide", "s", 80_000)])
def test_the_numpy_plan_answers_as_both_duckdb_plans(kind: str, precision: str, group_rows: int, home: Path,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    features = make_features(kind, precision)
    path = tmp_path / "visits.parquet"
    pq.write_table(_typed(features, kind), path, row_group_size=group_rows)
    store = _store(home, path, kind)
    try:
        entities = make_entities(features, kind)
        if kind != "string":
            entities["user"] = entities["user"].astype("Int64")
        _same(_by_each_plan(store, entities, monkeypatch))
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["string", "int"])
def test_batches_that_straddle_row_groups_answer_the_same(kind: str, home: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys, times and values are decoded a batch at a time: batches smaller than a row group and not
    aligned with it, some with keys that no entity row asks for, give the same answer."""
    features = make_features(kind, "ns", rows=60_000, keys=300)
    path = tmp_path / "visits.parquet"
    pq.write_table(_typed(features, kind), path, row_group_size=9_000)
    monkeypatch.setattr(asof, "_BATCH_ROWS", 2_500)
    monkeypatch.setattr(_payload, "_BATCH_ROWS", 4_000)
    store = _store(home, path, kind)
    try:
        entities = make_entities(features, kind, rows=8_000)
        entities = entities[~entities["user"].isin(_key_values(kind, np.arange(0, 300, 3)))]  # a third never asked
        if kind != "string":
            entities["user"] = entities["user"].astype("Int64")
        _same(_by_each_plan(store, entities.reset_index(drop=True), monkeypatch))
    finally:
        store.close()


def test_a_narrow_window_reads_only_its_row_groups_and_no_ttl_reaches_back_to_the_start(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    features = make_features("int", "s").sort_values("event_timestamp", ignore_index=True)
    path = tmp_path / "visits.parquet"
    pq.write_table(_typed(features, "int"), path, row_group_size=20_000)
    read: list[list[int]] = []
    real_read = pq.ParquetFile.iter_batches
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda self, **kw: (
        read.append(list(kw["row_groups"])) if "event_timestamp" in kw.get("columns", []) else None) or
        real_read(self, **kw))
    entities = make_entities(features, "int", rows=5_000)
    entities["user"] = entities["user"].astype("Int64")
    inside = entities["event_timestamp"].between(T0 + pd.Timedelta(days=4), T0 + pd.Timedelta(days=5))
    narrow = entities[inside].reset_index(drop=True)
    store = _store(home, path, "int")
    try:
        with_ttl = _by_each_plan(store, narrow, monkeypatch)
        matched_within_ttl = _matched(with_ttl["numpy"])
        _same(with_ttl, least_matched=0.2)
        assert 0 < len(read[0]) <= 3 < pq.ParquetFile(path).num_row_groups  # a day and a TTL of ten days
    finally:
        store.close()
    read.clear()
    store = _store(home, path, "int", ttl=None)  # no TTL: the latest row ever, however old
    try:
        monkeypatch.undo()
        results = _by_each_plan(store, narrow, monkeypatch, plans=("asof",))
        assert _matched(results["numpy"]) > matched_within_ttl + 0.1
        pd.testing.assert_frame_equal(results["numpy"], results["asof"], check_exact=True)
    finally:
        store.close()


def test_what_the_numpy_plan_declines_goes_to_duckdb(home: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    features, path = _written(tmp_path, "int", pa.uint64(), rows=5_000, keys=50)
    store = _store(home, path, "int")
    try:  # unsigned 64-bit keys (beyond int64): DuckDB's plan answers, the same as for int64 keys
        entities = make_entities(features, "int", rows=2_000)
        entities["user"] = entities["user"].astype("UInt64")
        answered = _spy(monkeypatch)
        got = store.training_set(entities, FEATURES, log_to_run=False)
        assert answered == [False]
        monkeypatch.undo()
        _written(tmp_path, "int", rows=5_000, keys=50)
        signed = _by_each_plan(store, entities.assign(user=entities["user"].astype("Int64")), monkeypatch)["numpy"]
        pd.testing.assert_frame_equal(got.drop(columns=["user"]), signed.drop(columns=["user"]), check_exact=True)
    finally:
        store.close()


def test_entity_rows_without_any_time_or_key_get_nulls(home: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _, path = _written(tmp_path, "string", rows=2_000, keys=20)
    store = _store(home, path, "string")
    try:
        nothing = pd.DataFrame({"user": ["user-1", None, "user-404"],
                                "event_timestamp": pd.to_datetime([None, "2026-03-27", "2026-03-27"], utc=True)})
        got = store.training_set(nothing, FEATURES, log_to_run=False)
        assert got[["x", "n", "label"]].isna().all().all() and len(got) == 3
        empty = store.training_set(nothing.iloc[:0], FEATURES, log_to_run=False)
        assert empty.empty and list(empty.columns) == ["user", "event_timestamp", "x", "n", "label"]
    finally:
        store.close()
