"""Feature pushes and lookups with event times far in the future or entity keys of the wrong type are refused.

A pushed row dated 9999-12-31 used to win every later push of its entity (online values are newest-wins),
"abc" was stored under an integer key, and a 30-digit key answered 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pytest

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, Float64, Int64
from tests.server.conftest import LiveServer, serve

NOW = pd.Timestamp.now(tz="UTC").floor("s")


def define(settings: Settings, tmp_path: Path) -> FeatureStore:
    folder = tmp_path / "zones"
    folder.mkdir(exist_ok=True)
    pd.DataFrame({"zone_id": [1, 2], "x": [1.0, 2.0], "event_timestamp": [NOW - pd.Timedelta(hours=1)] * 2}
                 ).to_parquet(folder / "p.parquet")
    zone = Entity("zone", join_keys=["zone_id"], key_types=[Int64])
    store = FeatureStore(settings=settings)
    store.apply([zone, FeatureView("stats", entities=[zone], schema=[Field("x", Float64)],
                                   source=FileSource(str(folder)), ttl=timedelta(days=1)),
                 FeatureService("model", features=["stats:x"])])
    return store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    s = define(Settings.load(home=str(tmp_path / "home")), tmp_path)
    yield s
    s.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = Settings.load(home=str(tmp_path / "server-home"))
    define(settings, tmp_path).close()
    server: LiveServer
    for server in serve(settings):
        with httpx.Client(base_url=server.url + "/api/features", timeout=60) as http:
            yield http


def row(zone: Any, when: pd.Timestamp = NOW, x: float = 1.0) -> dict[str, Any]:
    return {"zone_id": zone, "x": x, "event_timestamp": when}


def test_far_future_event_times_are_refused_and_cannot_freeze_a_value(store: FeatureStore) -> None:
    for when in (pd.Timestamp("2262-04-11", tz="UTC"), NOW + pd.Timedelta(hours=1)):
        with pytest.raises(InvalidInputError) as caught:
            store.push("stats", pd.DataFrame([row(7, when, x=666.0)]))
        assert caught.value.field == "rows.event_timestamp" and "seconds past now" in str(caught.value)
    year_9999 = pa.table({"zone_id": [7], "x": [666.0],  # Arrow holds what pandas' nanoseconds cannot
                          "event_timestamp": pa.array([datetime(9999, 12, 31, tzinfo=UTC)], pa.timestamp("us", "UTC"))})
    with pytest.raises(InvalidInputError) as caught:
        store.push("stats", year_9999)
    assert caught.value.field == "rows.event_timestamp" and "9999-12-31" in str(caught.value)
    store.push("stats", pd.DataFrame([row(7, NOW + pd.Timedelta(seconds=30), x=1.0)]))  # clocks drift a little
    store.push("stats", pd.DataFrame([row(7, NOW + pd.Timedelta(seconds=60), x=2.0)]))
    assert store.online(["stats:x"], entities={"zone_id": [7]}).to_dict()["x"] == [2.0]


def test_the_future_skew_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOOP_MAX_FUTURE_SKEW_SECONDS", "86400")
    settings = Settings.load(home=str(tmp_path / "home"))
    assert settings.max_future_skew_seconds == 86400
    store = define(settings, tmp_path)
    store.push("stats", pd.DataFrame([row(7, NOW + pd.Timedelta(hours=1))]))
    with pytest.raises(InvalidInputError):
        store.push("stats", pd.DataFrame([row(7, NOW + pd.Timedelta(days=2))]))
    store.close()
    monkeypatch.setenv("MLOOP_MAX_FUTURE_SKEW_SECONDS", "soon")
    with pytest.raises(InvalidInputError) as caught:
        Settings.load(home=str(tmp_path / "home"))
    assert caught.value.field == "max_future_skew_seconds"


@pytest.mark.parametrize("key", ["abc", 10**30, None, 2**63])
def test_entity_keys_of_the_wrong_type_are_refused_on_push(store: FeatureStore, key: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        store.push("stats", [row(3), row(key)])
    assert caught.value.field == "rows.zone_id"
    assert "Int64" in str(caught.value)


def test_entity_keys_of_the_wrong_type_are_refused_on_lookup(store: FeatureStore) -> None:
    for entities, field in [({"zone_id": [1, "abc"]}, "entities.zone_id[1]"),
                            ({"zone_id": [10**30]}, "entities.zone_id[0]"),
                            ([{"zone_id": True}], "entities[0].zone_id")]:
        with pytest.raises(InvalidInputError) as caught:
            store.online(["stats:x"], entities=entities)
        assert caught.value.field == field and "Int64" in str(caught.value)
    assert store.online(["stats:x"], entities={"zone_id": [1]}).status["stats"] == ["not_found"]


def test_the_rest_api_refuses_future_times_and_bad_keys(api: httpx.Client) -> None:
    def push(*rows: dict[str, Any]) -> httpx.Response:
        return api.post("/push/stats", json={"rows": [{**r, "event_timestamp": r["event_timestamp"].isoformat()}
                                                      for r in rows]})

    future = push(row(5, pd.Timestamp("2200-01-01", tz="UTC")))
    assert future.status_code == 422 and future.json()["field"] == "rows.event_timestamp", future.text
    year_9999 = api.post("/push/stats", json={"rows": [{"zone_id": 5, "x": 1.0,
                                                         "event_timestamp": "9999-12-31T00:00:00+00:00"}]})
    assert year_9999.status_code == 422 and year_9999.json()["field"] == "rows.event_timestamp", year_9999.text
    assert "MLOOP_MAX_FUTURE_SKEW_SECONDS" in year_9999.json()["message"]
    for key in ("abc", 10**30):
        wrong = push(row(key))
        assert wrong.status_code == 422 and wrong.json()["field"] == "rows.zone_id", wrong.text
        assert "Int64" in wrong.json()["message"]
        lookup = api.post("/online", json={"service": "model", "entities": {"zone_id": [key]}})
        assert lookup.status_code == 422 and lookup.json()["field"] == "entities.zone_id[0]", lookup.text
    assert push(row(5)).status_code == 200
    assert api.post("/online", json={"service": "model", "entities": {"zone_id": [5]}}).json()["features"]["x"] == [1.0]
