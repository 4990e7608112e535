"""Every timestamp unit (s, ms, us, ns) and zone (naive, UTC, DST zones) that pandas and Arrow produce,
in sources written by pandas and by pyarrow, in created timestamps, entity frames and pushed frames:
training sets, materialization and push all give the answer of a plain-Python reference."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mloop.features.offline as offline
from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, String

START = pd.Timestamp("2026-03-06", tz="UTC")  # spans New York's (03-08) and Berlin's (03-29) spring change
DAYS = 24
AS_OF = START + pd.Timedelta(days=DAYS)
TTL = timedelta(hours=30)
KEYS = [f"store-{i}" for i in range(6)]  # the last has no feature rows at all
FLOOR = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}


def _times(rng: np.random.Generator, n: int, unit: str) -> pd.Series:
    offsets = rng.integers(0, DAYS * 86_400 * 10**9, n)
    return pd.Series(START + pd.to_timedelta(offsets, unit="ns")).dt.floor(FLOOR[unit]).dt.as_unit(unit)


def make_data(unit: str, seed: int = 0, rows: int = 600, entity_rows: int = 300,
              keys: list[str] = KEYS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(feature rows, entity rows) in UTC: ties on event time broken by created time, 15% null values,
    missing created times, and entity rows exactly at, and one unit before, feature times."""
    rng = np.random.default_rng(seed)
    when = _times(rng, rows, unit)
    created = (when + pd.to_timedelta(rng.integers(0, 3600, rows), unit="s")).astype(when.dtype)
    created[rng.random(rows) < 0.1] = pd.NaT
    features = pd.DataFrame({"store_id": rng.choice(keys[:-1], rows), "event_timestamp": when, "created": created,
                             "x": np.where(rng.random(rows) < 0.15, np.nan, rng.random(rows)),
                             "kind": pd.Categorical(rng.choice(["a", "b", None], rows))})
    ties = features.sample(frac=0.2, random_state=seed).copy()  # same key and event time, later created
    ties["created"] = (ties["event_timestamp"] + pd.to_timedelta(rng.integers(3600, 7200, len(ties)), unit="s")
                       ).astype(when.dtype)
    ties["x"] = rng.random(len(ties))
    features = pd.concat([features, ties], ignore_index=True).sample(frac=1, random_state=seed, ignore_index=True)
    entity_times = _times(rng, entity_rows, unit)
    picked = features.sample(40, random_state=seed + 1)
    step = pd.Timedelta(1, unit=unit)
    entity_times = pd.concat([entity_times, picked["event_timestamp"], picked["event_timestamp"] - step],
                             ignore_index=True)
    wanted = np.concatenate([rng.choice(keys, entity_rows), picked["store_id"], picked["store_id"]])
    return features, pd.DataFrame({"store_id": wanted, "event_timestamp": entity_times.astype(when.dtype)})


def reference(features: pd.DataFrame, entities: pd.DataFrame, ttl: timedelta) -> pd.DataFrame:
    """Plain Python, row by row: the latest (event time, created time) at or before each row within the TTL."""
    feats = features.assign(t=_ns(features["event_timestamp"]),
                            c=_ns(features["created"]).fillna(-(2**63)).astype("int64"))
    by_key = {k: g.sort_values(["t", "c"]) for k, g in feats.groupby("store_id")}
    ttl_ns = int(ttl.total_seconds()) * 10**9
    xs, kinds = [], []
    for key, t in zip(entities["store_id"], _ns(entities["event_timestamp"]), strict=True):
        group = by_key.get(key)
        hit = None if group is None else group[(group["t"] <= t) & (group["t"] >= t - ttl_ns)]
        if hit is None or hit.empty:
            xs.append(np.nan)
            kinds.append(None)
        else:
            xs.append(hit["x"].iloc[-1])
            kinds.append(hit["kind"].iloc[-1])
    return pd.DataFrame({"x": xs, "kind": kinds})


def _ns(times: pd.Series) -> pd.Series:
    utc = times.dt.tz_convert("UTC") if times.dt.tz is not None else times
    return pd.Series(utc.dt.as_unit("ns").astype("int64"), index=times.index).where(times.notna())


def _zoned(frame: pd.DataFrame, columns: list[str], tz: str | None, naive_zone: str) -> pd.DataFrame:
    """The frame with its time columns in ``tz``; ``None``: naive wall-clock times in ``naive_zone``."""
    out = frame.copy()
    for c in columns:
        out[c] = out[c].dt.tz_convert(naive_zone).dt.tz_localize(None) if tz is None else out[c].dt.tz_convert(tz)
    return out


def _write(frame: pd.DataFrame, path: Path, writer: str) -> None:
    if writer == "pandas":
        frame.to_parquet(path, index=False)
    else:  # Arrow's own types: timestamp[unit, tz] arrays built by pyarrow
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _check(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    assert np.array_equal(got["x"].to_numpy(float), want["x"].to_numpy(float), equal_nan=True)
    assert [None if pd.isna(v) else v for v in got["kind"]] == [None if pd.isna(v) else v for v in want["kind"]]


def _store(home: Path, tmp: Path, features: pd.DataFrame, writer: str, timezone: str | None) -> FeatureStore:
    folder = tmp / "src"
    folder.mkdir()
    _write(features, folder / "part-0.parquet", writer)
    store = FeatureStore(home=str(home))
    entity = Entity("store", join_keys=["store_id"], key_types=[String])
    store.apply([entity, FeatureView("sales", entities=[entity], schema=[Field("x", Float64), Field("kind", String)],
                                     source=FileSource(str(folder)), created_timestamp="created", ttl=TTL,
                                     timezone=timezone)])
    return store


ZONES = [None, "UTC", "Europe/Berlin", "America/New_York"]


@pytest.mark.parametrize("writer", ["pandas", "pyarrow"])
@pytest.mark.parametrize("tz", ZONES, ids=lambda z: z or "naive")
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_training_materialize_and_push_in_every_unit_and_zone(unit: str, tz: str | None, writer: str, home: Path,
                                                              tmp_path: Path) -> None:
    features, entities = make_data(unit)
    naive_zone = "America/New_York"
    store = _store(home, tmp_path, _zoned(features, ["event_timestamp", "created"], tz, naive_zone), writer,
                   naive_zone if tz is None else None)
    try:
        entity_frame = _zoned(entities, ["event_timestamp"], tz, naive_zone)
        want = reference(features, entities, TTL)
        got = store.training_set(entity_frame, ["sales:x", "sales:kind"], timezone=naive_zone if tz is None else None,
                                 log_to_run=False)
        _check(got, want)
        assert got["event_timestamp"].equals(entity_frame["event_timestamp"].dt.tz_localize(naive_zone)
                                             .dt.tz_convert("UTC") if tz is None else entity_frame["event_timestamp"])
        arrow = store.training_set(pa.Table.from_pandas(entity_frame, preserve_index=False), ["sales:x", "sales:kind"],
                                   timezone=naive_zone if tz is None else None, output="arrow", log_to_run=False)
        _check(arrow.to_pandas(), want)

        # materialize: the latest row per key as of AS_OF, ties by created time
        store.materialize(None, AS_OF.to_pydatetime())
        latest = store.online(["sales:x", "sales:kind"], entities={"store_id": KEYS}, as_of=AS_OF.to_pydatetime())
        at_as_of = pd.DataFrame({"store_id": KEYS, "event_timestamp": [AS_OF] * len(KEYS)})
        expected = reference(features, at_as_of, TTL)
        assert np.array_equal(np.array(latest.values["x"], dtype=float), expected["x"].to_numpy(float),
                              equal_nan=True)

        # push fresh rows written in the same unit and zone (aware: push refuses naive times)
        fresh_time = (AS_OF - pd.Timedelta(minutes=1)).as_unit(unit)
        fresh = pd.DataFrame({"store_id": KEYS[:2], "x": [100.0, 200.0], "kind": ["a", "b"],
                              "event_timestamp": pd.Series([fresh_time] * 2).dt.as_unit(unit),
                              "created": pd.Series([fresh_time] * 2).dt.as_unit(unit)})
        fresh = _zoned(fresh, ["event_timestamp", "created"], tz or "UTC", naive_zone)
        store.push("sales", fresh, to="online" if tz is None else "both")
        pushed = store.online(["sales:x"], entities={"store_id": KEYS[:2]}, as_of=AS_OF.to_pydatetime())
        assert pushed.values["x"] == [100.0, 200.0]
        if tz is not None:  # the pushed file joins the source: training sets see it
            later = _zoned(at_as_of, ["event_timestamp"], tz, naive_zone)
            assert store.training_set(later, ["sales:x"], log_to_run=False)["x"].tolist()[:2] == [100.0, 200.0]
    finally:
        store.close()


@pytest.mark.parametrize("plan", ["numpy", "asof", "buckets"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_join_plans_match_the_reference(plan: str, seed: int, home: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline, "_try_numpy", lambda req: plan == "numpy")
    monkeypatch.setattr(offline, "_use_buckets", lambda *args: plan == "buckets")
    features, entities = make_data("ns", seed=seed, rows=4000, entity_rows=3000)
    store = _store(home, tmp_path, features, "pandas", None)
    extra = tmp_path / "src" / "part-1.parquet"  # seed 2: two files (rows addressed by file and row)
    try:
        # a Parquet file (values fetched by row address) or a DataFrame (values carried through the join)
        for ttl, source in ((TTL, None), (timedelta(minutes=90), None), (TTL, features)):
            view = store.feature_view("sales")[0]
            if seed == 2 and not extra.exists():
                features.iloc[:0].to_parquet(extra, index=False)
            store.apply([Entity("store", join_keys=["store_id"], key_types=[String]),
                         FeatureView("sales", entities=["store"], schema=view.schema,
                                     source=view.source if source is None else source,
                                     created_timestamp="created", ttl=ttl)])
            got = store.training_set(entities, ["sales:x", "sales:kind"], log_to_run=False)
            want = reference(features, entities, ttl)
            _check(got, want)
            assert 0.05 < want["x"].isna().mean() < 0.95
    finally:
        store.close()


def test_the_bucket_plan_is_chosen_for_a_short_ttl_and_not_for_piled_up_keys(home: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[bool] = []
    monkeypatch.setattr(offline, "_try_numpy", lambda req: False)  # DuckDB's choice between its two plans
    real = offline._use_buckets
    monkeypatch.setattr(offline, "_use_buckets", lambda *a: chosen.append(real(*a)) or chosen[-1])
    features, entities = make_data("us", rows=20_000, entity_rows=2000, keys=[f"k{i}" for i in range(2000)])
    store = _store(home, tmp_path, features, "pandas", None)
    try:
        store.training_set(entities, ["sales:x"], log_to_run=False)
        one_key = entities.assign(store_id=KEYS[0])
        store.training_set(one_key, ["sales:x"], log_to_run=False)
    finally:
        store.close()
    assert chosen == [True, False]


def _dst_store(home: Path, tmp_path: Path) -> FeatureStore:
    utc = pd.to_datetime(["2026-03-29 00:00", "2026-03-29 01:00", "2026-10-24 23:00", "2026-10-25 00:45",
                          "2026-10-25 01:45"], utc=True)
    rows = pd.DataFrame({"store_id": KEYS[0], "event_timestamp": utc, "created": utc, "x": [4.0, 5.0, 1.0, 2.0, 3.0],
                         "kind": ["a", "b", "a", "b", None]})
    return _store(home, tmp_path, rows, "pandas", None)


def _local(*wall: str | None) -> pd.DataFrame:
    return pd.DataFrame({"store_id": KEYS[0], "event_timestamp": pd.to_datetime(list(wall))})


def test_local_times_that_a_dst_change_repeats_or_skips_are_named_with_the_choices(home: Path,
                                                                                  tmp_path: Path) -> None:
    from mloop.errors import InvalidInputError

    store = _dst_store(home, tmp_path)
    try:
        rows = _local("2026-10-25 01:30", "2026-10-25 02:30", "2026-03-29 02:30", None)
        with pytest.raises(InvalidInputError, match=r"1 local time\(s\) happen twice in Europe/Berlin.*row 1 "
                                                    r"\(2026-10-25 02:30:00\).*ambiguous='earliest'") as caught:
            store.training_set(rows, ["sales:x"], timezone="Europe/Berlin", log_to_run=False)
        assert caught.value.field == "entity_df.event_timestamp"
        with pytest.raises(InvalidInputError, match=r"never happen in Europe/Berlin.*row 2 \(2026-03-29 02:30:00\)"
                                                    r".*nonexistent='shift_forward'"):
            store.training_set(rows, ["sales:x"], timezone="Europe/Berlin", ambiguous="latest", log_to_run=False)
        with pytest.raises(InvalidInputError, match="ambiguous"):
            store.training_set(rows, ["sales:x"], timezone="Europe/Berlin", ambiguous="first", log_to_run=False)
        with pytest.raises(InvalidInputError, match="IANA"):
            store.training_set(rows, ["sales:x"], timezone="Europe/Nowhere", log_to_run=False)
        # 02:30 the first time is 00:30 UTC (sees 23:00's 1.0); the second time is 01:30 UTC (sees 00:45's 2.0).
        # 02:30 in March does not exist: forward is 03:00 CEST = 01:00 UTC (sees 5.0), backward just before 01:00
        for ambiguous, nonexistent, want in (("earliest", "shift_forward", [1.0, 1.0, 5.0, None]),
                                             ("latest", "shift_backward", [1.0, 2.0, 4.0, None]),
                                             ("NaT", "NaT", [1.0, None, None, None])):
            got = store.training_set(rows, ["sales:x"], timezone="Europe/Berlin", ambiguous=ambiguous,
                                     nonexistent=nonexistent, log_to_run=False)
            assert [None if pd.isna(v) else v for v in got["x"]] == want, (ambiguous, nonexistent)
            assert len(got) == 4 and str(got["event_timestamp"].dt.tz) == "UTC"
        # "infer" reads a run of repeated times in order: 02:00, 02:30, then 02:00, 02:30 again
        repeated = _local("2026-10-25 02:00", "2026-10-25 02:50", "2026-10-25 02:00", "2026-10-25 02:50")
        got = store.training_set(repeated, ["sales:x"], timezone="Europe/Berlin", ambiguous="infer", log_to_run=False)
        assert got["x"].tolist() == [1.0, 2.0, 2.0, 3.0]
        with pytest.raises(InvalidInputError, match="cannot infer"):
            store.training_set(_local("2026-10-25 02:30"), ["sales:x"], timezone="Europe/Berlin", ambiguous="infer",
                               log_to_run=False)
    finally:
        store.close()
