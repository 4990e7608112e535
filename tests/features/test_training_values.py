"""How a training set's values are fetched: by row number from one Parquet file (only the row groups
that hold a matched row), by (file, row) from several files, or carried through the join. Each way,
on both join plans, must give the plain-Python reference's answer, nulls and types included."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mloop.features.offline as offline
from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64, String

T0 = pd.Timestamp("2026-03-28 12:00", tz="Europe/Berlin")  # the spring change falls inside the data
TTL = timedelta(hours=6)


def _features(rows: int, seed: int) -> pd.DataFrame:
    """Rows sorted by time (so row groups cover separate time ranges), 15% null values and null keys,
    and ties on (key, event time) that the later created time wins, some of them with a null created time."""
    rng = np.random.default_rng(seed)
    when = T0 + pd.to_timedelta(np.sort(rng.integers(0, 4 * 86_400, rows)), unit="s")
    keys = pd.array(rng.integers(0, 40, rows), dtype="Int64")
    keys[rng.random(rows) < 0.1] = pd.NA
    frame = pd.DataFrame({"zone_id": keys, "event_timestamp": when.as_unit("ns"),
                          "created": (when + pd.to_timedelta(rng.integers(0, 60, rows), unit="s")).as_unit("ns"),
                          "x": np.where(rng.random(rows) < 0.15, np.nan, rng.random(rows)),
                          "n": pd.array(np.where(rng.random(rows) < 0.15, None, rng.integers(0, 9, rows)),
                                        dtype="Int64"),
                          "label": pd.Categorical(rng.choice(["low", "high", None], rows))})
    ties = frame.sample(frac=0.1, random_state=seed).assign(x=lambda f: f["x"] + 10, label="tie")
    ties["created"] = ties["created"] + pd.Timedelta(minutes=5)
    frame.loc[frame.sample(frac=0.05, random_state=seed + 1).index, "created"] = pd.NaT  # loses every tie
    return pd.concat([frame, ties]).sort_values("event_timestamp", kind="stable", ignore_index=True)


def _entities(features: pd.DataFrame, rows: int, seed: int, hours: tuple[float, float],
              edges: bool = True) -> pd.DataFrame:
    """Entity rows within ``hours`` of T0, 5% with a null key; with ``edges`` also rows exactly at and
    exactly one TTL after feature times, and rows before any feature row."""
    rng = np.random.default_rng(seed)
    when = T0 + pd.to_timedelta(rng.uniform(hours[0] * 3600, hours[1] * 3600, rows), unit="s")
    keys = pd.array(rng.integers(0, 45, rows), dtype="Int64")
    keys[: rows // 20] = pd.NA
    frame = pd.DataFrame({"zone_id": keys, "event_timestamp": when})
    if edges:
        picked = features.dropna(subset=["zone_id"]).sample(20, random_state=seed)[["zone_id", "event_timestamp"]]
        early = pd.DataFrame({"zone_id": pd.array([1, 2], dtype="Int64"), "event_timestamp": T0 - pd.Timedelta(days=1)})
        frame = pd.concat([frame, picked, picked.assign(event_timestamp=picked["event_timestamp"] + TTL), early],
                          ignore_index=True)
    return frame.assign(event_timestamp=frame["event_timestamp"].dt.tz_convert("America/New_York"))


def _reference(features: pd.DataFrame, entities: pd.DataFrame) -> pd.DataFrame:
    """Row by row: the latest (event time, created time) at or before each row within the TTL (null keys:
    nothing)."""
    feats = features.dropna(subset=["zone_id"]).assign(
        t=features["event_timestamp"].astype("int64"),
        c=features["created"].astype("int64").where(features["created"].notna(), -(2 ** 63)))
    by_key = {int(k): g.sort_values(["t", "c"], kind="stable") for k, g in feats.groupby("zone_id")}
    ttl_ns = int(TTL.total_seconds()) * 10 ** 9
    picked = []
    for key, t in zip(entities["zone_id"], entities["event_timestamp"].dt.tz_convert("UTC").astype("int64"),
                      strict=True):
        group = by_key.get(int(key)) if key is not pd.NA else None
        hit = None if group is None else group[(group["t"] <= t) & (group["t"] >= t - ttl_ns)]
        picked.append(None if hit is None or hit.empty else hit.iloc[-1])
    return pd.DataFrame({name: [None if p is None or pd.isna(p[name]) else p[name] for p in picked]
                         for name in ("x", "n", "label")})


def _plain(column: pd.Series) -> list[object]:
    return [None if pd.isna(v) else v for v in column]


def _check(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    for name in ("x", "n", "label"):
        assert _plain(got[name]) == _plain(want[name]), name
    assert str(got["x"].dtype) == "float64"


def _store(home: Path, source: object, ttl: timedelta = TTL) -> FeatureStore:
    store = FeatureStore(home=str(home))
    zone = Entity("zone", join_keys=["zone_id"], key_types=[Int64])
    store.apply([zone, FeatureView("zone_stats", entities=[zone], source=source, created_timestamp="created",
                                   ttl=ttl, schema=[Field("x", Float64), Field("n", Int64), Field("label", String)])])
    return store


def _plan(monkeypatch: pytest.MonkeyPatch, plan: str) -> None:
    """Force a join plan: NumPy's (tried first by default), or DuckDB's ASOF or bucket plan."""
    monkeypatch.setattr(offline, "_try_numpy", lambda req: plan == "numpy")
    monkeypatch.setattr(offline, "_use_buckets", lambda *args: plan == "buckets")


@pytest.mark.parametrize("plan", ["numpy", "asof", "buckets"])
def test_values_are_taken_by_row_number_from_the_row_groups_that_hold_them(
        plan: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plan(monkeypatch, plan)
    features = _features(3000, seed=1)
    path = tmp_path / "zones.parquet"
    pq.write_table(pa.Table.from_pandas(features, preserve_index=False), path, row_group_size=250)
    read: list[list[int]] = []  # the row groups of each value column read (the NumPy plan reads the keys too)
    real_read = pq.ParquetFile.iter_batches
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda self, **kw: read.extend(
        [list(kw["row_groups"])] * len(set(kw["columns"]) & {"x", "n", "label"})) or real_read(self, **kw))
    store = _store(home, FileSource(str(path)))
    try:
        for hours in ((20, 30), (-30, 200)):  # a narrow window of entity rows, then one wider than the data
            read.clear()
            entities = _entities(features, 400, seed=2, hours=hours, edges=hours != (20, 30))
            _check(store.training_set(entities, ["zone_stats:x", "zone_stats:n", "zone_stats:label"],
                                      log_to_run=False), _reference(features, entities))
            assert read and all(groups == read[0] for groups in read)  # the same groups for each column
            assert len(read) == 3 and (len(read[0]) < 13) == (hours == (20, 30))
    finally:
        store.close()


@pytest.mark.parametrize("plan", ["numpy", "asof", "buckets"])
def test_rows_spread_over_several_files_with_ties_across_files(plan: str, home: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _plan(monkeypatch, plan)
    features = _features(1500, seed=3)
    folder = tmp_path / "zones"
    (folder / "day=2").mkdir(parents=True)
    shuffled = features.sample(frac=1, random_state=4, ignore_index=True)  # a tie's rows land in either file
    shuffled.iloc[:700].to_parquet(folder / "part-0.parquet", index=False)
    shuffled.iloc[700:].to_parquet(folder / "day=2" / "part-1.parquet", index=False)
    store = _store(home, FileSource(str(folder)))
    try:
        entities = _entities(features, 400, seed=5, hours=(-10, 110))
        _check(store.training_set(entities, ["zone_stats:x", "zone_stats:n", "zone_stats:label"],
                                  log_to_run=False), _reference(features, entities))
    finally:
        store.close()


def test_an_empty_entity_frame_and_a_window_before_every_row(home: Path, tmp_path: Path) -> None:
    features = _features(200, seed=6)
    path = tmp_path / "zones.parquet"
    features.to_parquet(path, index=False)
    store = _store(home, FileSource(str(path)))
    try:
        empty = _entities(features, 10, seed=7, hours=(0, 1)).iloc[:0]
        got = store.training_set(empty, ["zone_stats:x", "zone_stats:label"], log_to_run=False)
        assert list(got.columns) == ["zone_id", "event_timestamp", "x", "label"] and got.empty
        before = pd.DataFrame({"zone_id": pd.array([1, 2, None], dtype="Int64"),
                               "event_timestamp": [T0 - pd.Timedelta(days=3)] * 3})
        got = store.training_set(before, ["zone_stats:x", "zone_stats:label"], output="arrow", log_to_run=False)
        assert got.column("x").null_count == 3 and got.column("label").null_count == 3
        assert got.schema.field("x").type == pa.float64() and got.schema.field("label").type == pa.string()
    finally:
        store.close()
