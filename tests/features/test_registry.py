"""Definitions and the versioned registry: plan, apply, validation errors, pinning, search, repositories."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.features import (
    DefinitionError,
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    OnDemandFeatureView,
    SqlSource,
    String,
)
from tests.features.conftest import ts, zone_view


def _rows() -> pd.DataFrame:
    return pd.DataFrame({"zone_id": [1, 2], "x": [1.0, 2.0], "name": ["a", "b"], "event_timestamp": ts(0, 1)})


def test_apply_versions_changed_definitions_and_never_overwrites(db_url: str, zone: Entity, tmp_path: Path) -> None:
    store = FeatureStore(settings=Settings.load(home=str(tmp_path / "h"), db_url=db_url))
    view = zone_view(tmp_path, _rows(), description="first")
    plan = store.plan([zone, view])
    assert [c.action for c in plan.changes] == ["create", "create"]
    store.apply([zone, view])
    assert not store.apply([zone, view]).has_changes
    changed = zone_view(tmp_path, _rows(), description="second", ttl=timedelta(hours=9))
    plan = store.plan([zone, changed])
    assert plan.changes[1].action == "update" and set(plan.changes[1].changed) == {"description", "ttl_seconds"}
    assert "v1 -> v2" in str(plan)
    store.apply([zone, changed])
    assert [v.version for v in store.registry.history("feature_view", "zone_stats")] == [1, 2]
    assert store.registry.get("feature_view", "zone_stats", 1).spec["description"] == "first"
    assert store.feature_view("zone_stats")[1] == 2
    pinned = store.training_set(pd.DataFrame({"zone_id": [1], "event_timestamp": ts(8)}),
                                features=["zone_stats@1:x"])  # v1 has a 5 h TTL
    assert pinned["x"].isna().all()
    latest = store.training_set(pd.DataFrame({"zone_id": [1], "event_timestamp": ts(8)}), features=["zone_stats:x"])
    assert latest["x"].tolist() == [1.0]


def test_validation_names_the_definition_and_the_column(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    _rows().to_parquet(folder / "p.parquet")
    src = FileSource(str(folder))
    bad = [
        FeatureView("unknown_entity", entities=["driver"], schema=[Field("x", Float64)], source=src),
        FeatureView("missing_col", entities=["zone"], schema=[Field("nope", Float64)], source=src),
        FeatureView("mismatch", entities=["zone"], schema=[Field("name", Int64)], source=src),
        FeatureView("bad_ts", entities=["zone"], schema=[Field("x", Float64)], source=src,
                    timestamp="when"),
        FeatureService("svc", features=["zone_stats:x", "ghost:y"]),
        Entity("named", join_keys=["name"], key_types=[Int64]),
        FeatureView("key_type", entities=["named"], schema=[Field("x", Float64)], source=src),
    ]
    with pytest.raises(DefinitionError) as info:
        store.apply([zone, *bad])
    text = str(info.value)
    assert "feature view 'unknown_entity': unknown entity 'driver'" in text
    assert "feature view 'missing_col': feature 'nope' is missing in the source" in text
    assert "feature view 'mismatch': feature 'name' is declared Int64 but the source column is VARCHAR" in text
    assert "feature view 'bad_ts': event timestamp column 'when' is missing" in text
    assert "feature service 'svc': unknown feature view 'ghost'" in text
    assert "feature view 'key_type': join key 'name' of entity 'named' is declared Int64 but the source column is " \
           "VARCHAR" in text
    assert store.list() == []  # nothing stored when anything is wrong


def test_list_search_describe(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    view = zone_view(tmp_path, _rows(), tags={"team": "pricing"}, owner="ana", description="Zone fares")
    other = FeatureView("names", entities=["zone"], schema=[Field("name", String)], source=_rows())
    store.apply([zone, view, other, FeatureService("fares", features=["zone_stats:x", "names"])])
    assert [v.name for v in store.list("feature_view")] == ["names", "zone_stats"]
    assert [v.name for v in store.search(tag="team=pricing")] == ["zone_stats"]
    assert [v.name for v in store.search("fares")] == ["fares", "zone_stats"]
    assert {v.name for v in store.search(entity="zone")} == {"names", "zone_stats", "zone"}
    info = store.describe("zone_stats")
    assert info["version"] == 1 and info["spec"]["owner"] == "ana" and info["statistics"] == []
    with pytest.raises(NotFoundError):
        store.describe("nothing")


def test_feature_repository_file_and_service(tmp_path: Path, home: Path) -> None:
    _rows().to_parquet(tmp_path / "zones.parquet")
    (tmp_path / "features.py").write_text(f'''
from datetime import timedelta
from mloop.features import Entity, FeatureView, FeatureService, Field, FileSource, Float64
zone = Entity("zone", join_keys=["zone_id"])
stats = FeatureView("zone_stats", entities=[zone], schema=[Field("x", Float64)],
                    source=FileSource({str(tmp_path / "zones.parquet")!r}), ttl=timedelta(days=1))
model = FeatureService("model", features=["zone_stats:x"])
''')
    store = FeatureStore(tmp_path / "features.py", home=str(home))
    assert "3 to apply" in str(store.plan())
    store.apply()
    out = store.training_set(pd.DataFrame({"zone_id": [2], "event_timestamp": ts(3)}), service="model")
    assert out["x"].tolist() == [2.0]


def test_sql_sources_duckdb_and_postgres(store: FeatureStore, zone: Entity, tmp_path: Path,
                                         postgres_url: str) -> None:
    import sqlalchemy as sa

    path = tmp_path / "z.parquet"
    _rows().to_parquet(path)
    duck = FeatureView("duck", entities=[zone], schema=[Field("x", Float64)],
                       source=SqlSource(f"SELECT zone_id, x * 10 AS x, event_timestamp FROM read_parquet('{path}')"))
    engine = sa.create_engine(postgres_url)
    _rows().to_sql("zone_rows", engine, index=False)
    engine.dispose()
    pg = FeatureView("pg", entities=[zone], schema=[Field("x", Float64)],
                     source=SqlSource("SELECT * FROM zone_rows", database=postgres_url))
    store.apply([zone, duck, pg])
    out = store.training_set(pd.DataFrame({"zone_id": [1, 2], "event_timestamp": ts(5, 5)}),
                             features=["duck:x", "pg:x"], full_names=True)
    assert out["duck__x"].tolist() == [10.0, 20.0] and out["pg__x"].tolist() == [1.0, 2.0]


def test_csv_glob_source_with_naive_timestamps_needs_a_timezone(store: FeatureStore, zone: Entity,
                                                                tmp_path: Path) -> None:
    for day in (1, 2):
        pd.DataFrame({"zone_id": [1], "x": [float(day)], "event_timestamp": [f"2026-01-0{day} 10:00:00"]}
                     ).to_csv(tmp_path / f"rows-{day}.csv", index=False)
    pattern = str(tmp_path / "rows-*.csv")
    naive = FeatureView("csv_rows", entities=["zone"], schema=[Field("x", Float64)], source=FileSource(pattern))
    with pytest.raises(DefinitionError, match="has no time zone"):
        store.apply([zone, naive])
    paris = FeatureView("csv_rows", entities=["zone"], schema=[Field("x", Float64)], source=FileSource(pattern),
                        timezone="Europe/Paris")  # 10:00 in Paris is 09:00 UTC
    store.apply([zone, paris])
    when = pd.to_datetime(["2026-01-02 08:59", "2026-01-02 09:00"], utc=True)
    out = store.training_set(pd.DataFrame({"zone_id": [1, 1], "event_timestamp": when}), features=["csv_rows:x"])
    assert out["x"].tolist() == [1.0, 2.0]
    [result] = store.materialize(None, pd.Timestamp("2026-01-03", tz="UTC").to_pydatetime())
    assert result.rows == 1
    got = store.online(["csv_rows:x"], entities={"zone_id": [1]})
    assert got.values["x"] == [2.0] and got.status["csv_rows"] == ["present"]  # no TTL: never expires
    assert got.event_times["csv_rows"][0] == pd.Timestamp("2026-01-02 09:00", tz="UTC").to_pydatetime()


def test_parquet_folder_on_object_storage(store: FeatureStore, zone: Entity, tmp_path: Path, s3_bucket: str) -> None:
    import fsspec

    fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": __import__("os").environ["MLOOP_S3_ENDPOINT_URL"]})
    _rows().to_parquet(tmp_path / "p.parquet")
    fs.put(str(tmp_path / "p.parquet"), f"{s3_bucket}/zones/part-0.parquet")
    view = FeatureView("remote", entities=[zone], schema=[Field("x", Float64)],
                       source=FileSource(f"{s3_bucket}/zones/"))
    store.apply([zone, view])
    out = store.training_set(pd.DataFrame({"zone_id": [1, 2], "event_timestamp": ts(5, 5)}), features=["remote:x"])
    assert out["x"].tolist() == [1.0, 2.0]


def test_bad_definitions_name_the_field_value_and_expectation() -> None:
    with pytest.raises(InvalidInputError, match="join_keys") as err:
        Entity("zone", join_keys="zone_id")  # a string, not a list: would have become keys 'z', 'o', ...
    assert "zone_id" in str(err.value)
    with pytest.raises(InvalidInputError, match="distinct feature names"):
        OnDemandFeatureView("ratios", inputs=["stats:x"], schema=[Field("r"), Field("r")], function=lambda df: df)
    with pytest.raises(InvalidInputError, match="at least one Field"):
        OnDemandFeatureView("ratios", inputs=["stats:x"], schema=[], function=lambda df: df)
