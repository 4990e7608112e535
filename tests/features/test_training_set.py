"""Point-in-time correctness: the edge cases, and a property test against pandas merge_asof."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mloop
from mloop.errors import InvalidInputError
from mloop.features import Entity, FeatureStore, FeatureView, Field, Float64
from tests.features.conftest import T0, ts, zone_view


def _entities(keys: list[int], hours: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"zone_id": keys, "event_timestamp": ts(*hours)})


def test_latest_at_or_before_within_ttl_and_nothing_from_the_future(store: FeatureStore, zone: Entity,
                                                                    tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1, 1, 1, 2], "x": [1.0, 2.0, 3.0, 9.0], "event_timestamp": ts(0, 2, 4, 1)})
    store.apply([zone, zone_view(tmp_path, rows)])
    out = store.training_set(_entities([1, 1, 1, 1, 2, 3], [2, 3, 1.5, 100, 0.5, 2]), features=["zone_stats:x"])
    # equal timestamp (h2) is included; h3 sees h2; h1.5 sees h0; h100 is outside the TTL; zone 2 at h0.5
    # has only a future row; zone 3 has no history at all: all rows kept, nulls where nothing fits
    assert out["x"].tolist()[:3] == [2.0, 2.0, 1.0]
    assert out["x"].isna().tolist()[3:] == [True, True, True]
    assert out["zone_id"].tolist() == [1, 1, 1, 1, 2, 3]


def test_exactly_at_ttl_is_inside_and_one_microsecond_later_is_outside(store: FeatureStore, zone: Entity,
                                                                       tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1], "x": [5.0], "event_timestamp": ts(0)})
    store.apply([zone, zone_view(tmp_path, rows, ttl=timedelta(hours=5))])
    when = pd.Series([T0 + pd.Timedelta(hours=5), T0 + pd.Timedelta(hours=5, microseconds=1)])
    out = store.training_set(pd.DataFrame({"zone_id": [1, 1], "event_timestamp": when}), features=["zone_stats:x"])
    assert out["x"].tolist()[0] == 5.0 and np.isnan(out["x"].tolist()[1])


def test_created_timestamp_breaks_event_time_ties(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1, 1, 1], "x": [1.0, 3.0, 2.0], "event_timestamp": ts(1, 1, 1),
                         "created": ts(5, 7, 6)})
    store.apply([zone, zone_view(tmp_path, rows, created="created")])
    out = store.training_set(_entities([1], [2]), features=["zone_stats:x"])
    assert out["x"].tolist() == [3.0]


def test_duplicated_entity_rows_keep_their_order(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1, 2], "x": [1.0, 2.0], "event_timestamp": ts(0, 0)})
    store.apply([zone, zone_view(tmp_path, rows)])
    entity_df = _entities([2, 1, 2, 1, 2], [1, 1, 1, 1, 1]).assign(label=[0, 1, 2, 3, 4])
    out = store.training_set(entity_df, features=["zone_stats:x"])
    assert out["label"].tolist() == [0, 1, 2, 3, 4]
    assert out["x"].tolist() == [2.0, 1.0, 2.0, 1.0, 2.0]


def test_several_views_with_different_ttls(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    short = pd.DataFrame({"zone_id": [1], "a": [1.0], "event_timestamp": ts(0)})
    long = pd.DataFrame({"zone_id": [1], "b": [2.0], "event_timestamp": ts(0)})
    store.apply([zone, zone_view(tmp_path, short, "short", ttl=timedelta(hours=1), features=("a",)),
                 zone_view(tmp_path, long, "long", ttl=timedelta(days=1), features=("b",))])
    out = store.training_set(_entities([1, 1], [0.5, 3]), features=["short:a", "long:b"])
    assert out["a"].tolist()[0] == 1.0 and np.isnan(out["a"].tolist()[1])
    assert out["b"].tolist() == [2.0, 2.0]


def test_naive_timestamps_are_rejected_with_the_fix_or_converted_with_a_timezone(store: FeatureStore,
                                                                                zone: Entity, tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1], "x": [5.0], "event_timestamp": ts(0)})
    store.apply([zone, zone_view(tmp_path, rows)])
    naive = pd.DataFrame({"zone_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01 02:00")]})
    with pytest.raises(InvalidInputError, match="tz_localize"):
        store.training_set(naive, features=["zone_stats:x"])
    out = store.training_set(naive, features=["zone_stats:x"], timezone="Europe/Paris")  # 01:00 UTC
    assert out["x"].tolist() == [5.0]
    assert str(out["event_timestamp"].dt.tz) == "UTC"


def test_entity_input_as_parquet_or_sql_and_arrow_output(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1], "x": [5.0], "event_timestamp": ts(0)})
    store.apply([zone, zone_view(tmp_path, rows)])
    path = tmp_path / "entities.parquet"
    _entities([1, 2], [1, 1]).to_parquet(path)
    table = store.training_set(str(path), features=["zone_stats"], output="arrow")
    assert table.column("x").to_pylist() == [5.0, None]
    sql = f"SELECT * FROM read_parquet('{path}')"
    assert store.training_set(sql, features=["zone_stats:x"])["x"].tolist()[0] == 5.0


def test_training_set_is_recorded_as_a_run_input(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1], "x": [5.0], "event_timestamp": ts(0)})
    store.apply([zone, zone_view(tmp_path, rows)])
    mloop.configure(home=str(store.settings.home))
    with mloop.start_run(experiment="fs") as run:
        store.training_set(_entities([1], [1]), features=["zone_stats:x"])
    inputs = mloop.client().repo.list_inputs(run.run_id)
    assert len(inputs) == 1
    dataset, context = inputs[0]
    assert context == "training" and "zone_stats@1" in dataset.source and dataset.rows == 1


def test_name_collisions_need_full_names(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1], "x": [5.0], "event_timestamp": ts(0)})
    store.apply([zone, zone_view(tmp_path, rows, "a"), zone_view(tmp_path, rows, "b")])
    with pytest.raises(InvalidInputError, match="full_names"):
        store.training_set(_entities([1], [1]), features=["a:x", "b:x"])
    out = store.training_set(_entities([1], [1]), features=["a:x", "b:x"], full_names=True)
    assert out[["a__x", "b__x"]].values.tolist() == [[5.0, 5.0]]


def _reference(features: pd.DataFrame, entities: pd.DataFrame, ttl: pd.Timedelta) -> list[float]:
    feats = features.sort_values(["event_timestamp", "created"]).drop_duplicates(["zone_id", "event_timestamp"],
                                                                                 keep="last")
    ent = entities.reset_index().rename(columns={"index": "row"}).sort_values("event_timestamp")
    merged = pd.merge_asof(ent, feats.rename(columns={"event_timestamp": "fts"}), left_on="event_timestamp",
                           right_on="fts", by="zone_id", direction="backward", tolerance=ttl)
    return merged.sort_values("row")["x"].tolist()


_PIT_STORE: FeatureStore | None = None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_matches_pandas_merge_asof(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 30))
    keys = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    hours = data.draw(st.lists(st.integers(0, 48), min_size=n, max_size=n))
    created = data.draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True))
    features = pd.DataFrame({"zone_id": keys, "x": [float(i) for i in range(n)],
                             "event_timestamp": [T0 + pd.Timedelta(hours=h) for h in hours],
                             "created": [T0 + pd.Timedelta(seconds=c) for c in created]})
    m = data.draw(st.integers(1, 20))
    entities = pd.DataFrame({"zone_id": data.draw(st.lists(st.integers(1, 5), min_size=m, max_size=m)),
                             "event_timestamp": [T0 + pd.Timedelta(hours=h) for h in
                                                 data.draw(st.lists(st.integers(0, 60), min_size=m, max_size=m))]})
    ttl_hours = data.draw(st.integers(1, 24))
    global _PIT_STORE
    if _PIT_STORE is None:
        _PIT_STORE = FeatureStore(home=str(tmp_path_factory.mktemp("pit") / "home"))
    store = _PIT_STORE
    tmp = tmp_path_factory.mktemp("pit")
    store.apply([Entity("zone", join_keys=["zone_id"]),
                 zone_view(tmp, features, ttl=timedelta(hours=ttl_hours), created="created")])
    got = store.training_set(entities, features=["zone_stats:x"], log_to_run=False)["x"].tolist()
    want = _reference(features, entities, pd.Timedelta(hours=ttl_hours))
    assert np.allclose(np.array(got, dtype=float), np.array(want, dtype=float), equal_nan=True)


def test_dataframe_source_needs_the_defining_process(store: FeatureStore, zone: Entity, home: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1], "x": [5.0], "event_timestamp": ts(0)})
    view = FeatureView("mem", entities=[zone], schema=[Field("x", Float64)], source=rows)
    store.apply([zone, view])
    other = FeatureStore(home=str(home))
    with pytest.raises(InvalidInputError, match="in-memory DataFrame"):
        other.training_set(_entities([1], [1]), features=["mem:x"])
    assert store.training_set(_entities([1], [1]), features=["mem:x"])["x"].tolist() == [5.0]


def test_bad_entity_input_is_a_clear_error(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1], "x": [5.0], "event_timestamp": ts(0)})
    store.apply([zone, zone_view(tmp_path, rows)])
    with pytest.raises(InvalidInputError, match="join key columns"):
        store.training_set(pd.DataFrame({"zone": [1], "event_timestamp": ts(1)}), features=["zone_stats:x"])
    with pytest.raises(InvalidInputError, match="timestamp column 'when'"):
        store.training_set(_entities([1], [1]), features=["zone_stats:x"], timestamp_column="when")
    with pytest.raises(InvalidInputError, match="same types"):
        store.training_set(pd.DataFrame({"zone_id": ["a"], "event_timestamp": ts(1)}), features=["zone_stats:x"])
    with pytest.raises(mloop.errors.NotFoundError, match="no feature 'y'"):
        store.training_set(_entities([1], [1]), features=["zone_stats:y"])
