"""Feature-store fixtures: a store per test, the online store on SQLite and on Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def ts(*hours: float) -> pd.Series:
    return pd.Series([T0 + pd.Timedelta(hours=h) for h in hours])


@pytest.fixture
def store(home: Path) -> Iterator[FeatureStore]:
    s = FeatureStore(home=str(home))
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "redis"])
def online_store(request: pytest.FixtureRequest, home: Path) -> Iterator[FeatureStore]:
    """A store whose online side is SQLite or Redis (a fresh project namespace, cleaned afterwards)."""
    project = f"p{uuid.uuid4().hex[:10]}"
    url = None if request.param == "sqlite" else request.getfixturevalue("redis_url")
    s = FeatureStore(home=str(home), project=project, online_url=url)
    yield s
    if request.param == "redis":
        client = s.online_store.client  # type: ignore[attr-defined]
        keys = list(client.scan_iter(match=f"mloop:{project}:*", count=1000))
        if keys:
            client.delete(*keys)
    s.close()


@pytest.fixture
def zone() -> Entity:
    return Entity("zone", join_keys=["zone_id"], key_types=[Int64])


def zone_view(tmp_path: Path, rows: pd.DataFrame, name: str = "zone_stats", ttl: timedelta | None = timedelta(hours=5),
              features: tuple[str, ...] = ("x",), created: str | None = None, **kw: object) -> FeatureView:
    folder = tmp_path / f"src_{name}"
    folder.mkdir(exist_ok=True)
    rows.to_parquet(folder / "part-0.parquet", index=False)
    return FeatureView(name, entities=["zone"], schema=[Field(f, Float64) for f in features],
                       source=FileSource(str(folder)), ttl=ttl, created_timestamp=created, **kw)
