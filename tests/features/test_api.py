"""The feature-store REST endpoints over a real server: online retrieval, push, materialize, definitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mloop.config import Settings
from mloop.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, Float64
from tests.server.conftest import LiveServer, serve

NOW = pd.Timestamp.now(tz="UTC").floor("s")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings.load(home=str(tmp_path / "home"))
    folder = tmp_path / "zones"
    folder.mkdir()
    pd.DataFrame({"zone_id": [1, 2], "x": [1.0, 2.0], "event_timestamp": [NOW - pd.Timedelta(hours=1)] * 2}
                 ).to_parquet(folder / "p.parquet")
    zone = Entity("zone", join_keys=["zone_id"])
    store = FeatureStore(settings=settings)
    store.apply([zone, FeatureView("stats", entities=[zone], schema=[Field("x", Float64)],
                                   source=FileSource(str(folder)), ttl=timedelta(days=1)),
                 FeatureService("model", features=["stats:x"])])
    yield from serve(settings)


def test_materialize_online_push_and_definitions(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url + "/api/features", timeout=30) as http:
        done = http.post("/materialize", json={"end": (NOW + pd.Timedelta(seconds=1)).isoformat()})
        assert done.status_code == 200 and done.json()[0]["rows"] == 2
        got = http.post("/online", json={"service": "model", "entities": {"zone_id": [1, 3]}}).json()
        assert got["features"] == {"zone_id": [1, 3], "x": [1.0, None]}
        assert got["status"]["stats"] == ["present", "not_found"] and got["event_times"]["stats"][0]
        pushed = http.post("/push/stats", json={"rows": [{"zone_id": 3, "x": 7.5,
                                                          "event_timestamp": NOW.isoformat()}]})
        assert pushed.status_code == 200 and pushed.json()["rows"] == 1
        got = http.post("/online", json={"features": ["stats:x"], "entities": {"zone_id": [3]}}).json()
        assert got["features"]["x"] == [7.5]
        assert [d["name"] for d in http.get("/definitions", params={"kind": "feature_view"}).json()] == ["stats"]
        assert http.get("/definitions/stats").json()["statistics"][0]["count"] == 2


def test_bad_requests_are_clear_json_errors(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url + "/api/features", timeout=30) as http:
        bad_key = http.post("/online", json={"features": ["stats:x"], "entities": {"zone": [1]}})
        assert bad_key.status_code == 422 and "join keys" in bad_key.json()["message"]
        unknown = http.post("/online", json={"features": ["ghost:x"], "entities": {"zone_id": [1]}})
        assert unknown.status_code == 404 and unknown.json()["error_code"] == "NOT_FOUND"
        naive = http.post("/push/stats", json={"rows": [{"zone_id": 3, "x": 1.0,
                                                         "event_timestamp": "2026-01-01T00:00:00"}]})
        assert naive.status_code == 422 and "timezone-aware" in naive.json()["message"]
        garbled = http.post("/push/stats", json={"rows": [{"zone_id": 3, "x": 1.0, "event_timestamp": "soon"}]})
        assert garbled.status_code == 422 and "rows.event_timestamp" in garbled.json()["message"]
        text = http.post("/push/stats", json={"rows": [{"zone_id": 3, "x": "fast",
                                                        "event_timestamp": "2026-01-01T00:00:00+00:00"}]})
        assert text.status_code == 422 and "rows.x" in text.json()["message"]
        assert http.get("/definitions/nothing").status_code == 404


def test_naming_many_projects_keeps_a_bounded_number_of_stores(server: LiveServer) -> None:
    """Any caller can name a project; each name used to keep a FeatureStore (and its DuckDB) forever."""
    from mloop.server.api.features import MAX_STORES

    with httpx.Client(base_url=server.url, timeout=30) as http:
        for i in range(MAX_STORES + 10):
            assert http.get("/api/features/definitions", params={"project": f"p{i}"}).status_code == 200
        assert http.get("/api/features/definitions").json()  # the default project still answers
    stores = server.app.state.feature_stores
    assert len(stores) == MAX_STORES and "default" in stores and "p0" not in stores


def test_online_as_of_over_rest_never_returns_a_later_value(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url + "/api/features", timeout=30) as http:
        assert http.post("/materialize", json={"end": (NOW + pd.Timedelta(seconds=1)).isoformat()}).status_code == 200
        body = {"features": ["stats:x"], "entities": {"zone_id": [1, 2]}}
        before = http.post("/online", json={**body, "as_of": (NOW - pd.Timedelta(hours=2)).isoformat()}).json()
        assert before["features"]["x"] == [None, None]
        assert before["status"]["stats"] == ["after_as_of", "after_as_of"]
        after = http.post("/online", json={**body, "as_of": NOW.tz_convert("Europe/Paris").isoformat()}).json()
        assert after["features"]["x"] == [1.0, 2.0] and after["status"]["stats"] == ["present", "present"]
        naive = http.post("/online", json={**body, "as_of": "2026-03-29T02:30:00"})
        assert naive.status_code == 422 and "as_of" in naive.text
        number = http.post("/online", json={**body, "as_of": 1767225600})
        assert number.status_code == 422 and "as_of" in number.text
