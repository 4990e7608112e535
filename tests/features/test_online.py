"""Materialization and online reads; every test runs against SQLite and Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from mloop.errors import InvalidInputError
from mloop.features import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float64,
    OnDemandFeatureView,
)

NOW = pd.Timestamp.now(tz="UTC").floor("s")


def _at(*hours_ago: float) -> list[pd.Timestamp]:
    return [NOW - pd.Timedelta(hours=h) for h in hours_ago]


def _view(tmp_path: Path, rows: pd.DataFrame, name: str = "stats", ttl: timedelta = timedelta(hours=5),
          features: tuple[str, ...] = ("x", "y"), created: str | None = None) -> FeatureView:
    folder = tmp_path / f"src_{name}"
    folder.mkdir(exist_ok=True)
    rows.to_parquet(folder / f"part-{len(list(folder.iterdir()))}.parquet", index=False)
    return FeatureView(name, entities=["zone"], schema=[Field(f, Float64) for f in features],
                       source=FileSource(str(folder)), ttl=ttl, created_timestamp=created)


def _rows(keys: list[int], hours_ago: list[float], x: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"zone_id": keys, "x": x, "y": [v * 10 for v in x], "event_timestamp": _at(*hours_ago)})


def test_materialize_then_read_latest_with_event_times_and_ttl(online_store: FeatureStore, zone: Entity,
                                                               tmp_path: Path) -> None:
    rows = _rows([1, 1, 2, 3], [3, 1, 2, 10], [1.0, 2.0, 3.0, 4.0])
    online_store.apply([zone, _view(tmp_path, rows)])
    [result] = online_store.materialize(None, NOW.to_pydatetime())
    assert result.rows == 3
    got = online_store.online(["stats:x", "stats:y"], entities={"zone_id": [1, 2, 3, 4]})
    assert got.values["x"] == [2.0, 3.0, None, None]
    assert got.values["y"] == [20.0, 30.0, None, None]
    assert got.status["stats"] == ["present", "present", "expired", "not_found"]
    assert got.missing["x"] == [False, False, True, True]
    assert got.event_times["stats"][0] == _at(1)[0].to_pydatetime()
    assert got.to_dict()["zone_id"] == [1, 2, 3, 4]
    assert got.to_records()[0] == {"zone_id": 1, "x": 2.0, "y": 20.0}
    one = online_store.online(["stats:y"], entities={"zone_id": [2]})
    assert one.to_dict() == {"zone_id": [2], "y": [30.0]}
    records = online_store.online(["stats:y"], entities=[{"zone_id": 2}, {"zone_id": 1}])
    assert records.to_dict() == {"zone_id": [2, 1], "y": [30.0, 20.0]}
    stats = {s["feature"]: s for s in online_store.describe("stats")["statistics"]}
    assert stats["x"]["count"] == 3 and stats["x"]["min"] == "2.0" and stats["x"]["max"] == "4.0"
    assert stats["x"]["mean"] == pytest.approx(3.0) and stats["x"]["distinct"] == 3


def test_incremental_materialization_picks_up_late_rows_and_never_moves_back(online_store: FeatureStore,
                                                                            zone: Entity, tmp_path: Path) -> None:
    online_store.apply([zone, _view(tmp_path, _rows([1, 2], [4, 4], [1.0, 1.0]))])
    online_store.materialize_incremental(end=(NOW - pd.Timedelta(hours=2)).to_pydatetime())
    assert online_store.describe("stats")["watermark"] is not None
    # late rows: zone 1 gets a row whose event time is before the watermark but newer than what is online,
    # zone 2 gets a row older than what is online (must not replace it)
    _view(tmp_path, _rows([1, 2], [3, 5], [7.0, 9.0]))
    online_store.materialize_incremental(end=NOW.to_pydatetime())
    got = online_store.online(["stats:x"], entities={"zone_id": [1, 2]})
    assert got.values["x"] == [7.0, 1.0]


def test_crash_during_materialization_then_resume(online_store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    rows = _rows(list(range(1, 51)), [1] * 50, [float(i) for i in range(50)])
    online_store.apply([zone, _view(tmp_path, rows)])

    def crash(batch: int) -> None:
        if batch == 2:
            raise KeyboardInterrupt("power cut")

    end = NOW.to_pydatetime()
    with pytest.raises(KeyboardInterrupt):
        online_store.materialize(None, end, batch_rows=10, on_batch=crash)
    partial = online_store.online(["stats:x"], entities={"zone_id": list(range(1, 51))})
    assert sum(s == "present" for s in partial.status["stats"]) == 30
    [result] = online_store.materialize(None, end, batch_rows=10)
    assert result.resumed_from == 3 and result.rows == 20 and result.batches == 5
    full = online_store.online(["stats:x"], entities={"zone_id": list(range(1, 51))})
    assert full.values["x"] == [float(i) for i in range(50)]


def test_push_writes_online_and_offline(online_store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    online_store.apply([zone, _view(tmp_path, _rows([1], [2], [1.0]))])
    online_store.materialize(None, NOW.to_pydatetime())
    fresh = _rows([1, 1, 5], [0.5, 0.2, 0.1], [3.0, 4.0, 5.0])
    assert online_store.push("stats", fresh, to="both") == 3
    got = online_store.online(["stats:x"], entities={"zone_id": [1, 5]})
    assert got.values["x"] == [4.0, 5.0]
    older = _rows([1], [1], [99.0])
    online_store.push("stats", older)
    assert online_store.online(["stats:x"], entities={"zone_id": [1]}).values["x"] == [4.0]
    train = online_store.training_set(pd.DataFrame({"zone_id": [5], "event_timestamp": [NOW]}),
                                      features=["stats:x"])
    assert train["x"].tolist() == [5.0]
    with pytest.raises(InvalidInputError, match="missing"):
        online_store.push("stats", fresh.drop(columns=["y"]))


def test_push_rejects_a_wrongly_typed_feature_before_writing(online_store: FeatureStore, zone: Entity,
                                                             tmp_path: Path) -> None:
    online_store.apply([zone, _view(tmp_path, _rows([1], [2], [1.0]))])
    online_store.materialize(None, NOW.to_pydatetime())
    folder = tmp_path / "src_stats"
    before = sorted(folder.iterdir())
    bad = _rows([1], [0.1], [3.0]).assign(x=["three"])
    with pytest.raises(InvalidInputError, match="rows.x") as err:
        online_store.push("stats", bad, to="both")
    assert "Float64" in str(err.value) and "VARCHAR" in str(err.value)
    assert sorted(folder.iterdir()) == before  # nothing appended offline
    assert online_store.online(["stats:x"], entities={"zone_id": [1]}).values["x"] == [1.0]  # nor online


def test_service_with_on_demand_transform_runs_the_same_online_and_offline(online_store: FeatureStore,
                                                                           zone: Entity, tmp_path: Path) -> None:
    def per_km(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"x_per_km": df["x"] / df["distance_km"]})

    odfv = OnDemandFeatureView("ratios", inputs=["stats:x"], schema=[Field("x_per_km", Float64)], function=per_km,
                               request=[Field("distance_km", Float64)])
    online_store.apply([zone, _view(tmp_path, _rows([1, 2], [1, 1], [4.0, 9.0])), odfv,
                        FeatureService("eta", features=["stats:y", "ratios"])])
    online_store.materialize(None, NOW.to_pydatetime())
    got = online_store.online(service="eta", entities={"zone_id": [1, 2]}, request={"distance_km": [2.0, 3.0]})
    assert got.to_dict() == {"zone_id": [1, 2], "y": [40.0, 90.0], "x_per_km": [2.0, 3.0]}
    train = online_store.training_set(pd.DataFrame({"zone_id": [1, 2], "event_timestamp": [NOW, NOW],
                                                    "distance_km": [2.0, 3.0]}), service="eta")
    assert train[["y", "x_per_km"]].values.tolist() == [[40.0, 2.0], [90.0, 3.0]]
    with pytest.raises(InvalidInputError, match="distance_km"):
        online_store.online(service="eta", entities={"zone_id": [1]})


def test_online_input_errors(online_store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    online_store.apply([zone, _view(tmp_path, _rows([1], [1], [1.0]))])
    with pytest.raises(InvalidInputError, match="join keys"):
        online_store.online(["stats:x"], entities={"zone": [1]})
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        online_store.materialize(None, datetime(2026, 1, 1))


def test_online_read_is_fast_with_a_compiled_plan(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": range(100), "event_timestamp": [NOW] * 100,
                         **{f"f{i}": [float(i)] * 100 for i in range(10)}})
    store.apply([zone, _view(tmp_path, rows, features=tuple(f"f{i}" for i in range(10)), ttl=timedelta(days=1))])
    store.materialize(None, datetime.now(UTC))
    refs = [f"stats:f{i}" for i in range(10)]
    store.online(refs, entities={"zone_id": [1]})
    start = time.perf_counter()
    for _ in range(2000):
        store.online(refs, entities={"zone_id": [1]})
    per_call = (time.perf_counter() - start) / 2000
    assert per_call < 0.001  # ~0.1 ms here; loose for a loaded CI machine; bench/features.py measures p99


def test_materialize_breaks_ties_by_created_time_and_keeps_null_values(online_store: FeatureStore, zone: Entity,
                                                                       tmp_path: Path) -> None:
    rows = pd.DataFrame({"zone_id": [1, 1, 1, 2, 2], "x": [1.0, 3.0, 2.0, 5.0, None],
                         "y": [0.0, 0.0, 0.0, 0.0, 0.0], "event_timestamp": _at(1, 1, 1, 2, 1),
                         "created": _at(0.5, 0.1, 0.3, 0.1, 0.1)})
    online_store.apply([zone, _view(tmp_path, rows, created="created")])
    online_store.materialize(None, NOW.to_pydatetime())
    got = online_store.online(["stats:x"], entities={"zone_id": [1, 2]})
    assert got.values["x"] == [3.0, None] and got.status["stats"] == ["present", "present"]


def test_redis_answers_several_views_in_one_round_trip(redis_url: str, home: Path, zone: Entity,
                                                       tmp_path: Path) -> None:
    import uuid

    store = FeatureStore(home=str(home), project=f"p{uuid.uuid4().hex[:10]}", online_url=redis_url)
    store.apply([zone, _view(tmp_path, _rows([1], [1], [1.0]), "a"), _view(tmp_path, _rows([1], [1], [2.0]), "b")])
    store.materialize(None, NOW.to_pydatetime())
    refs = ["a:x", "b:y"]
    store.online(refs, entities={"zone_id": [1]})
    client = store.online_store.client  # type: ignore[attr-defined]
    with client.monitor() as monitor:  # every command the server receives, with who sent it
        address = client.client_info()["addr"]  # the pooled connection the store reads through
        got = store.online(refs, entities={"zone_id": [1, 2]})
        client.echo("mloop-sentinel")
        ours = []
        while True:
            seen = monitor.next_command()
            if f"{seen['client_address']}:{seen['client_port']}" != address:
                continue
            if seen["command"].startswith("ECHO"):
                break
            if not seen["command"].startswith(("CLIENT", "HELLO")):
                ours.append(seen["command"].split()[0])
    assert got.to_dict() == {"zone_id": [1, 2], "x": [1.0, None], "y": [20.0, None]}
    assert ours == ["EVALSHA"]  # one script call MGETs both views
    for table in ("a", "b"):
        store.online_store.drop(f"{store.project}__{table}__v1")
    store.close()


def test_composite_keys_and_typed_values(online_store: FeatureStore, tmp_path: Path) -> None:
    from mloop.features import Bool, Int64, String

    zone_hour = Entity("zone_hour", join_keys=["zone_id", "hour"])
    rows = pd.DataFrame({"zone_id": [1, 1, 2], "hour": [8, 9, 8], "n": [3, 4, 5], "label": ["a", "b", "c"],
                         "busy": [True, False, True], "event_timestamp": _at(1, 1, 1)})
    folder = tmp_path / "zh"
    folder.mkdir()
    rows.to_parquet(folder / "p.parquet")
    view = FeatureView("zh", entities=[zone_hour], source=FileSource(str(folder)), ttl=timedelta(days=1),
                       schema=[Field("n", Int64), Field("label", String), Field("busy", Bool)])
    online_store.apply([zone_hour, view])
    entity_df = pd.DataFrame({"zone_id": [1, 2, 1], "hour": [9, 8, 7], "event_timestamp": [NOW] * 3})
    train = online_store.training_set(entity_df, features=["zh"])
    assert train["n"].tolist()[:2] == [4, 5] and train["label"].tolist()[:2] == ["b", "c"]
    assert train["busy"].tolist()[:2] == [False, True] and pd.isna(train["n"].iloc[2])
    online_store.materialize(None, NOW.to_pydatetime())
    got = online_store.online(["zh"], entities={"zone_id": [1, 2, 1], "hour": [9, 8, 7]})
    assert got.to_dict() == {"zone_id": [1, 2, 1], "hour": [9, 8, 7], "n": [4, 5, None], "label": ["b", "c", None],
                             "busy": [False, True, None]}
    assert [type(v) for v in got.values["busy"]] == [bool, bool, type(None)]
    with pytest.raises(InvalidInputError, match="join keys"):
        online_store.online(["zh"], entities={"zone_id": [1]})


def test_process_killed_mid_materialization_resumes(store: FeatureStore, zone: Entity, tmp_path: Path) -> None:
    import subprocess
    import sys

    rows = _rows(list(range(1, 41)), [1] * 40, [float(i) for i in range(40)])
    store.apply([zone, _view(tmp_path, rows)])
    end = NOW.isoformat()
    script = f"""
import os, pandas as pd
from mloop.features import FeatureStore
store = FeatureStore(home={str(store.settings.home)!r})
def die(batch):
    if batch == 1:
        os._exit(9)  # no cleanup, no exception handlers: a killed process
store.materialize(None, pd.Timestamp({end!r}).to_pydatetime(), batch_rows=10, on_batch=die)
"""
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert died.returncode == 9, died.stderr
    [result] = store.materialize(None, NOW.to_pydatetime(), batch_rows=10)
    assert result.resumed_from == 2 and result.rows == 20
    got = store.online(["stats:x"], entities={"zone_id": list(range(1, 41))})
    assert got.values["x"] == [float(i) for i in range(40)]


def test_materialization_bookkeeping_on_postgres(postgres_url: str, home: Path, zone: Entity,
                                                 tmp_path: Path) -> None:
    from mloop.config import Settings

    store = FeatureStore(settings=Settings.load(home=str(home), db_url=postgres_url))
    store.apply([zone, _view(tmp_path, _rows([1, 2], [2, 1], [1.0, 2.0]))])
    [first] = store.materialize_incremental(end=(NOW - pd.Timedelta(minutes=90)).to_pydatetime())
    [second] = store.materialize_incremental()
    assert (first.rows, second.rows) == (1, 2)
    assert store.describe("stats")["statistics"][0]["count"] == 2
    assert store.online(["stats:x"], entities={"zone_id": [1, 2]}).values["x"] == [1.0, 2.0]
    store.close()


def test_reading_as_of_a_past_moment_never_returns_a_newer_value_across_dst(online_store: FeatureStore, zone: Entity,
                                                                            tmp_path: Path) -> None:
    """Paris falls back on 2026-10-25: 02:30 happens at 00:30Z (+02:00) and again at 01:30Z (+01:00)."""
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")

    def at(hour: int, minute: int, fold: int = 0, day: int = 25) -> datetime:
        return datetime(2026, 10, day, hour, minute, fold=fold, tzinfo=paris)

    rows = pd.DataFrame({
        "zone_id": [1, 1, 2, 3, 5],
        "x": [1.0, 2.0, 5.0, 7.0, None],
        "y": [10.0, None, 50.0, 70.0, 90.0],
        "event_timestamp": pd.Series([at(1, 30), at(2, 30, fold=1), at(2, 10), at(18, 0, day=24), at(2, 40)],
                                     dtype="datetime64[ns, Europe/Paris]"),
    })
    online_store.apply([zone, _view(tmp_path, rows, ttl=timedelta(hours=6))])
    online_store.materialize(None, at(4, 0, fold=1))
    refs, entities = ["stats:x", "stats:y"], {"zone_id": [1, 2, 3, 4, 5]}

    # the first 02:45 (00:45Z): zone 1's stored value is from the second 02:30 (01:30Z), later: withheld,
    # though its wall-clock time is earlier; zone 3 is older than the TTL; zone 4 was never written
    first = online_store.online(refs, entities=entities, as_of=at(2, 45))
    assert first.status["stats"] == ["after_as_of", "present", "expired", "not_found", "present"]
    assert first.values == {"x": [None, 5.0, None, None, None], "y": [None, 50.0, None, None, 90.0]}
    assert first.event_times["stats"][:2] == [None, at(2, 10).astimezone(UTC)]
    assert first.missing["x"] == [True, False, True, True, False]
    assert first.to_json()["event_times"]["stats"][0] is None  # not even when it changed leaks

    second = online_store.online(refs, entities=entities, as_of=at(2, 45, fold=1))  # 01:45Z
    assert second.status["stats"][:2] == ["present", "present"]
    assert second.values["x"][:2] == [2.0, 5.0] and second.values["y"][0] is None  # a stored null stays null
    # the boundary is inclusive, to the microsecond, and any zone names the same instant
    exact = pd.Timestamp("2026-10-24T21:30:00", tz="America/New_York")  # = 01:30Z = the second 02:30 in Paris
    assert online_store.online(refs, entities={"zone_id": [1]}, as_of=exact).values["x"] == [2.0]
    before = exact - pd.Timedelta(microseconds=1)
    assert online_store.online(refs, entities={"zone_id": [1]}, as_of=before).status["stats"] == ["after_as_of"]
    with pytest.raises(InvalidInputError, match="as_of") as err:
        online_store.online(refs, entities={"zone_id": [1]}, as_of=datetime(2026, 10, 25, 2, 45))
    assert "timezone-aware" in str(err.value)


def test_online_reads_keep_key_order_duplicates_and_bounds(online_store: FeatureStore, zone: Entity,
                                                           tmp_path: Path) -> None:
    rows = _rows(list(range(1, 1201)), [1] * 1200, [float(i) for i in range(1, 1201)])
    online_store.apply([zone, _view(tmp_path, rows)])
    online_store.materialize(None, NOW.to_pydatetime())
    keys = [1200, 3, 3, 99999, 1, 600] * 200  # more keys than one SQL IN list or one Lua unpack takes
    got = online_store.online(["stats:y"], entities={"zone_id": keys})
    want = [None if k > 1200 else k * 10.0 for k in keys]
    assert got.values["y"] == want and got.to_dict()["zone_id"] == keys
    assert online_store.online(["stats:y"], entities={"zone_id": []}).to_dict() == {"zone_id": [], "y": []}
    with pytest.raises(InvalidInputError, match="zone_id") as err:  # an integer beyond Int64
        online_store.online(["stats:y"], entities={"zone_id": [1, 2**63]})
    assert "Int64" in str(err.value)
    with pytest.raises(InvalidInputError, match="entities.zone_id"):  # a string would be read as characters
        online_store.online(["stats:y"], entities={"zone_id": "12"})


def test_sqlite_tables_of_the_column_layout_are_converted_without_changing_a_value(store: FeatureStore, zone: Entity,
                                                                                  tmp_path: Path) -> None:
    import sqlite3

    from mloop.features.materialize import online_table

    store.apply([zone, _view(tmp_path, _rows([1], [30], [5.0]))])
    path = store.online_url[len("sqlite:///"):]
    table = online_table(store.project, "stats", 1)
    old = sqlite3.connect(path, isolation_level=None)  # what earlier versions wrote: one column per feature
    old.execute(f'CREATE TABLE "{table}" (k TEXT PRIMARY KEY, ts INTEGER NOT NULL, f0, f1) WITHOUT ROWID')
    fresh = int(NOW.timestamp() * 1_000_000)
    old.executemany(f'INSERT INTO "{table}" VALUES (?, ?, ?, ?)',
                    [("1", fresh, 0.1 + 0.2, None), ("2", fresh - 1, 1e-300, 2.0**60), ("3", fresh, None, -0.0)])
    old.close()
    got = store.online(["stats:x", "stats:y"], entities={"zone_id": [1, 2, 3, 4]})
    assert got.values == {"x": [0.1 + 0.2, 1e-300, None, None], "y": [None, 2.0**60, -0.0, None]}
    assert got.status["stats"] == ["present", "present", "present", "not_found"]
    store.materialize(None, NOW.to_pydatetime())  # an older source row never replaces a converted newer one
    assert store.online(["stats:x"], entities={"zone_id": [1]}).values["x"] == [0.1 + 0.2]
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == [(table,)]


def test_redis_reads_survive_a_script_flush_and_refuse_a_corrupt_row(redis_url: str, home: Path, zone: Entity,
                                                                       tmp_path: Path) -> None:
    import uuid

    from mloop.errors import BackendError

    store = FeatureStore(home=str(home), project=f"p{uuid.uuid4().hex[:10]}", online_url=redis_url)
    store.apply([zone, _view(tmp_path, _rows([1, 2, 3], [1, 1, 1], [1.0, 2.0, 3.0]))])
    store.materialize(None, NOW.to_pydatetime())
    client = store.online_store.client  # type: ignore[attr-defined]
    assert store.online(["stats:x"], entities={"zone_id": [1, 2]}).values["x"] == [1.0, 2.0]
    client.script_flush()  # as after a server restart: the read script is loaded again, once
    assert store.online(["stats:x"], entities={"zone_id": [2, 3]}).values["x"] == [2.0, 3.0]
    client.set(f"mloop:{store.project}:{store.project}__stats__v1:2", b"[1, 2.0], [3")  # shifts later rows
    with pytest.raises(BackendError, match="malformed|not a feature row"):
        store.online(["stats:x"], entities={"zone_id": [1, 2, 3]})
    store.online_store.drop(f"{store.project}__stats__v1")
    store.close()
