"""The feature store's main scenarios, run directly against the stores and through a live ``mloop server``.

Each test runs once per mode (``mode_settings``); in server mode it also builds the same answer with a direct
store over a home of its own and asserts both are identical, and that the client's home stayed empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, Float64, Int64

PARIS = "Europe/Paris"
TTL = timedelta(hours=5)


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the feature files live; the server (built after this fixture) may read files under it."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("MLOOP_FEATURE_SOURCE_ROOTS", str(root))
    return root


@pytest.fixture
def stores(data_root: Path, mode_settings: Settings, tmp_path: Path) -> Iterator[tuple[Any, FeatureStore]]:
    """The store under test (direct or through the server) and a direct reference store over its own home."""
    store = FeatureStore(settings=mode_settings)
    reference = FeatureStore(settings=Settings.load(home=str(tmp_path / "reference-home"), tracking_uri=""))
    assert reference.settings.remote is False
    assert type(store).__name__ == ("HttpFeatureStore" if mode_settings.remote else "FeatureStore")
    yield store, reference
    store.close()
    reference.close()
    if mode_settings.remote:  # nothing of the stores reached the client's home
        home = Path(mode_settings.home)
        assert not (home / "mloop.db").exists() and not (home / "online.db").exists()
        assert not (home / "artifacts").exists()


def _feature_rows(seed: int = 7) -> pd.DataFrame:
    """Hourly readings of 20 zones across the spring-forward night in Paris, with nulls and gaps."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2026-03-28 18:00", "2026-03-29 12:00", freq="37min", tz="UTC")
    rows = [(zone, t) for zone in range(1, 21) for t in stamps if rng.random() > 0.25]
    frame = pd.DataFrame(rows, columns=["zone_id", "event_timestamp"])
    frame["avg_fare"] = rng.normal(20, 5, len(frame)).round(3)
    frame.loc[rng.random(len(frame)) < 0.1, "avg_fare"] = np.nan  # readings that failed
    frame["trips"] = rng.integers(0, 50, len(frame))
    return frame


def _definitions(root: Path, rows: pd.DataFrame) -> list[Any]:
    folder = root / "zone_stats"
    folder.mkdir(exist_ok=True)
    rows.to_parquet(folder / "part-0.parquet", index=False)
    zone = Entity("zone", join_keys=["zone_id"], key_types=[Int64])
    view = FeatureView("zone_stats", entities=[zone], schema=[Field("avg_fare", Float64), Field("trips", Int64)],
                       source=FileSource(str(folder)), ttl=TTL, tags={"team": "eta"})
    return [zone, view, FeatureService("eta", features=["zone_stats:avg_fare", "zone_stats:trips"])]


def _entities(seed: int = 3) -> pd.DataFrame:
    """Wall-clock times in Paris, some in the hour that 29 March 2026 skips, for known and unknown zones."""
    rng = np.random.default_rng(seed)
    local = pd.Timestamp("2026-03-28 20:00") + pd.to_timedelta(rng.integers(0, 16 * 60, 300), unit="min")
    local = list(local) + [pd.Timestamp("2026-03-29 02:30")] * 3  # does not exist in Paris
    return pd.DataFrame({"zone_id": list(rng.integers(1, 23, 300)) + [1, 2, 21],
                         "event_timestamp": local, "label": np.arange(303)})


def _expected(rows: pd.DataFrame, entities: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time answers by brute force: the latest reading at or before each instant, within the TTL."""
    when = entities["event_timestamp"].dt.tz_localize(PARIS, nonexistent="shift_forward").dt.tz_convert("UTC")
    fares, trips = [], []
    for zone, instant in zip(entities["zone_id"], when, strict=True):
        seen = rows[(rows.zone_id == zone) & (rows.event_timestamp <= instant) & (rows.event_timestamp > instant - TTL)]
        last = seen.sort_values("event_timestamp").tail(1)
        fares.append(last["avg_fare"].iloc[0] if len(last) else np.nan)
        trips.append(last["trips"].iloc[0] if len(last) else None)
    return pd.DataFrame({"avg_fare": fares, "trips": trips})


def _ints(values: pd.Series) -> list[int | None]:
    return [None if pd.isna(v) else int(v) for v in values]


def test_definitions_apply_plan_list_describe(stores: tuple[Any, FeatureStore], data_root: Path) -> None:
    store, reference = stores
    defs = _definitions(data_root, _feature_rows())
    assert str(store.plan(defs)) == str(reference.plan(defs))
    assert str(store.apply(defs)) == str(reference.apply(defs)) == (
        "+ entity zone (new, v1)\n+ feature view zone_stats (new, v1)\n+ feature service eta (new, v1)\n"
        "3 to apply, 0 unchanged.")
    assert not store.apply(defs).has_changes  # applying again stores nothing
    listed = [(v.kind, v.name, v.version, v.fingerprint) for v in store.list()]
    assert listed == [(v.kind, v.name, v.version, v.fingerprint) for v in reference.list()]
    assert [v.name for v in store.search(tag="team=eta")] == ["zone_stats"]
    assert [v.name for v in store.list("entity")] == ["zone"]
    described = store.describe("zone_stats")
    assert described["versions"] == [1] and described["watermark"] is None
    assert described["spec"] == reference.describe("zone_stats")["spec"]
    assert store.feature_view("zone_stats")[0].feature_names == ["avg_fare", "trips"]


def test_training_set_is_point_in_time_correct_across_dst(stores: tuple[Any, FeatureStore], data_root: Path) -> None:
    store, reference = stores
    rows = _feature_rows()
    defs = _definitions(data_root, rows)
    store.apply(defs)
    reference.apply(defs)
    entities = _entities()
    got = store.training_set(entities, service="eta", timezone=PARIS, nonexistent="shift_forward")
    want = reference.training_set(entities, service="eta", timezone=PARIS, nonexistent="shift_forward")
    pd.testing.assert_frame_equal(got, want)
    assert got["event_timestamp"].dt.tz is not None and got["label"].tolist() == list(range(303))
    truth = _expected(rows, entities)
    np.testing.assert_array_equal(got["avg_fare"].to_numpy(), truth["avg_fare"].to_numpy())
    assert _ints(got["trips"]) == _ints(truth["trips"])
    assert got["avg_fare"].isna().sum() > 10  # nulls from the source and from zones without data travelled
    arrow = store.training_set(entities.head(5), ["zone_stats:avg_fare"], timezone=PARIS, output="arrow")
    assert arrow.column_names == ["zone_id", "event_timestamp", "label", "avg_fare"]


def test_training_set_from_a_parquet_path_is_recorded_in_the_run(stores: tuple[Any, FeatureStore], data_root: Path,
                                                                 tmp_path: Path, mode_settings: Settings) -> None:
    import mloop
    from mloop.tracking.client import TrackingClient

    store, _ = stores
    store.apply(_definitions(data_root, _feature_rows()))
    entities = _entities().assign(event_timestamp=lambda f: f.event_timestamp.dt.tz_localize("UTC"))
    entities.to_parquet(tmp_path / "entities.parquet")  # the client's file: read by the client, not the server
    with mloop.start_run(experiment="parity") as run:
        frame = store.training_set(str(tmp_path / "entities.parquet"), service="eta")
    inputs = TrackingClient(mode_settings).repo.list_inputs(run.run_id)
    assert [(d.name, context, d.rows) for d, context in inputs] == [("training-set-eta", "training", len(frame))]
    assert inputs[0][0].source.startswith("features://default/zone_stats@1?service=eta@1")


def test_materialize_then_online_and_push(stores: tuple[Any, FeatureStore], data_root: Path) -> None:
    store, reference = stores
    rows = _feature_rows()
    defs = _definitions(data_root, rows)
    end = datetime(2026, 3, 29, 12, tzinfo=UTC)
    results = {}
    for s in (store, reference):
        s.apply(defs)
        results[s is store] = [(r.view, r.version, r.rows, r.start, r.end) for r in s.materialize(end=end)]
    assert results[True] == results[False] and results[True][0][2] == 20
    assert store.describe("zone_stats")["watermark"] == store.freshness()[0]["watermark"] == end.isoformat()
    as_of = end + timedelta(hours=1)
    asked = {"zone_id": [1, 7, 999]}
    got = store.online(service="eta", entities=asked, as_of=as_of)
    want = reference.online(service="eta", entities=asked, as_of=as_of)
    assert got.to_json() == want.to_json()
    assert got.status["zone_stats"][2] == "not_found" and got.event_times == want.event_times
    latest = rows[rows.zone_id == 7].sort_values("event_timestamp").iloc[-1]
    assert got.to_records()[1]["trips"] == latest["trips"]

    fresh = pd.DataFrame({"zone_id": [7], "event_timestamp": [end + timedelta(minutes=30)], "avg_fare": [None],
                          "trips": [3]})
    assert store.push("zone_stats", fresh) == reference.push("zone_stats", fresh) == 1
    got = store.online(["zone_stats:avg_fare", "zone_stats:trips"], entities=[{"zone_id": 7}], as_of=as_of)
    assert got.to_records() == [{"zone_id": 7, "avg_fare": None, "trips": 3}]
    assert got.to_json() == reference.online(["zone_stats:avg_fare", "zone_stats:trips"], entities=[{"zone_id": 7}],
                                             as_of=as_of).to_json()


@pytest.mark.parametrize("case", ["naive_entities", "unknown_view", "naive_push", "unknown_describe",
                                  "bad_output", "push_missing_column"])
def test_bad_input_raises_the_same_error_in_both_modes(stores: tuple[Any, FeatureStore], data_root: Path,
                                                       case: str) -> None:
    store, reference = stores
    defs = _definitions(data_root, _feature_rows())
    entities = _entities()
    calls = {
        "naive_entities": lambda s: s.training_set(entities, service="eta"),
        "unknown_view": lambda s: s.training_set(entities, ["nope:x"], timezone="UTC"),
        "naive_push": lambda s: s.push("zone_stats", pd.DataFrame({
            "zone_id": [1], "event_timestamp": [datetime(2026, 3, 29)], "avg_fare": [1.0], "trips": [1]})),
        "unknown_describe": lambda s: s.describe("missing"),
        "bad_output": lambda s: s.training_set(entities, service="eta", timezone="UTC", output="polars"),
        "push_missing_column": lambda s: s.push("zone_stats", pd.DataFrame({
            "zone_id": [1], "event_timestamp": [datetime(2026, 3, 29, tzinfo=UTC)], "avg_fare": [1.0]})),
    }
    errors = []
    for s in (store, reference):
        s.apply(defs)
        with pytest.raises((InvalidInputError, NotFoundError)) as caught:
            calls[case](s)
        errors.append((type(caught.value), caught.value.field))
    assert errors[0] == errors[1]


def test_server_refuses_sources_it_may_not_read(stores: tuple[Any, FeatureStore], mode_settings: Settings,
                                                tmp_path: Path) -> None:
    """A request may not define a view over the server's own files, nor send SQL (code) to run there."""
    from mloop.features import SqlSource, on_demand_feature_view

    if not mode_settings.remote:
        pytest.skip("only a server refuses sources: a direct store reads its user's own files")
    store, _ = stores
    zone = Entity("zone", join_keys=["zone_id"])
    outside = FeatureView("secrets", entities=[zone], schema=[Field("x", Float64)],
                          source=FileSource("/etc/passwd", format="csv"))
    with pytest.raises(InvalidInputError) as caught:
        store.apply([zone, outside])
    assert caught.value.field == "feature view secrets.source.path" and "/etc/passwd" in str(caught.value)
    sneaky = FeatureView("sneaky", entities=[zone], schema=[Field("x", Float64)],
                         source=SqlSource("SELECT * FROM read_csv('/etc/passwd')"))
    with pytest.raises(InvalidInputError, match="SQL sources are code"):
        store.apply([zone, sneaky])
    in_memory = FeatureView("mem", entities=[zone], schema=[Field("x", Float64)],
                            source=pd.DataFrame({"zone_id": [1], "x": [1.0], "event_timestamp": [datetime.now(UTC)]}))
    with pytest.raises(InvalidInputError, match="in-memory DataFrame"):
        store.apply([zone, in_memory])
    @on_demand_feature_view(inputs=["x"], schema=[Field("y", Float64)])
    def doubled(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"y": frame["x"] * 2})

    with pytest.raises(InvalidInputError) as caught:  # its function is code the server would have to run
        store.apply([zone, doubled])
    assert caught.value.field == "on_demand_feature_view doubled" and "MLOOP_FEATURE_REPO" in str(caught.value)
    assert store.list() == []  # nothing of a refused apply was stored


CLI_REPO = '''
from datetime import timedelta
from mloop.features import Entity, FeatureView, FeatureService, Field, FileSource, Float64
zone = Entity("zone", join_keys=["zone_id"])
stats = FeatureView("zone_stats", entities=[zone], schema=[Field("x", Float64)], source=FileSource({path!r}),
                    ttl=timedelta(days=1), tags={{"team": "eta"}})
model = FeatureService("model", features=["zone_stats:x"])
'''


def test_cli_apply_list_materialize_online(data_root: Path, mode_settings: Settings, tmp_path: Path) -> None:
    """`mloop features` run as a user runs it (a subprocess that inherits MLOOP_TRACKING_URI in server mode)."""
    import json
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([sys.executable, "-m", "mloop", "features", *args], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
        assert "Traceback" not in out.stderr, out.stderr
        return out

    (data_root / "zones").mkdir()
    now = pd.Timestamp.now(tz="UTC").floor("s")
    pd.DataFrame({"zone_id": [1, 2], "x": [1.5, None], "event_timestamp": [now - pd.Timedelta(hours=1)] * 2}
                 ).to_parquet(data_root / "zones" / "p.parquet")
    (tmp_path / "features.py").write_text(CLI_REPO.format(path=str(data_root / "zones")))
    assert "applied" in run("apply").stdout
    assert [d["name"] for d in json.loads(run("list", "--tag", "team=eta", "--json").stdout)] == ["zone_stats"]
    assert run("materialize", "--end", (now + pd.Timedelta(minutes=1)).isoformat()).returncode == 0
    got = json.loads(run("online", "--service", "model", "--entity", "zone_id=1,2,3").stdout)
    assert got["features"]["x"] == [1.5, None, None]
    assert got["status"]["zone_stats"] == ["present", "present", "not_found"]
    missing = run("describe", "nope")
    assert missing.returncode != 0 and "No definition named 'nope'" in missing.stderr
    if mode_settings.remote:
        assert not (Path(mode_settings.home) / "mloop.db").exists()


OD_REPO = '''
from datetime import timedelta
import pandas as pd
from mloop.features import Entity, FeatureView, FeatureService, Field, FileSource, Float64, on_demand_feature_view
zone = Entity("zone", join_keys=["zone_id"])
stats = FeatureView("zone_stats", entities=[zone], schema=[Field("avg_fare", Float64)], source=FileSource({path!r}),
                    ttl=timedelta(hours=5))

@on_demand_feature_view(inputs=["zone_stats:avg_fare"], schema=[Field("fare_per_km", Float64)],
                        request=[Field("km", Float64)])
def per_km(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({{"fare_per_km": frame["avg_fare"] / frame["km"]}})

pricing = FeatureService("pricing", features=["zone_stats:avg_fare", "per_km:fare_per_km"])
'''


def test_on_demand_views_from_the_servers_own_repository(data_root: Path, mode_settings: Settings, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A team shares one features.py: the server runs its on-demand functions, the client applies the same file."""
    rows = _feature_rows()[["zone_id", "event_timestamp", "avg_fare"]]
    (data_root / "zones").mkdir()
    rows.to_parquet(data_root / "zones" / "p.parquet", index=False)
    repo = tmp_path / "features.py"
    repo.write_text(OD_REPO.format(path=str(data_root / "zones")))
    monkeypatch.setenv("MLOOP_FEATURE_REPO", str(repo))  # read by the server's feature store on its first request
    store = FeatureStore(repo, settings=mode_settings)
    assert store.apply().has_changes
    entities = pd.DataFrame({"zone_id": [1, 2, 3], "km": [2.0, 4.0, 1.0],
                             "event_timestamp": pd.to_datetime(["2026-03-29 06:00"] * 3, utc=True)})
    got = store.training_set(entities, service="pricing")
    np.testing.assert_allclose(got["fare_per_km"], got["avg_fare"] / entities["km"])
    assert got["avg_fare"].notna().sum() >= 2
    store.close()
