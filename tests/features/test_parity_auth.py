"""The feature store through a server with authentication on: the client sends its token (MLOOP_TOKEN), the
server's roles decide, the registry records the token's identity, and a training set's body is bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from mloop.errors import AuthenticationError, MloopError, PermissionDeniedError
from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64
from tests.auth.conftest import AuthServer, start

LIMIT = 256 * 1024


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthServer]:
    root = tmp_path / "data"
    (root / "zones").mkdir(parents=True)
    pd.DataFrame({"zone_id": [1, 2], "x": [1.5, np.nan],
                  "event_timestamp": [datetime(2026, 1, 1, tzinfo=UTC)] * 2}).to_parquet(root / "zones" / "p.parquet")
    monkeypatch.setenv("MLOOP_FEATURE_SOURCE_ROOTS", str(root))
    monkeypatch.setenv("MLOOP_MAX_REQUEST_BYTES", str(LIMIT))
    yield from start(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}", monkeypatch)


def _store(server: AuthServer, who: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FeatureStore:
    if who is None:
        monkeypatch.delenv("MLOOP_TOKEN", raising=False)
    else:
        monkeypatch.setenv("MLOOP_TOKEN", server.tokens[who])
    return FeatureStore(settings=Settings.load(home=str(tmp_path / "client"), tracking_uri=server.url))


def _definitions(tmp_path: Path) -> list[object]:
    zone = Entity("zone", join_keys=["zone_id"], key_types=[Int64])
    return [zone, FeatureView("zones", entities=[zone], schema=[Field("x", Float64)],
                              source=FileSource(str(tmp_path / "data" / "zones")), ttl=timedelta(days=2))]


def test_token_roles_and_recorded_identity(server: AuthServer, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("MLOOP_USER", "whoever-i-claim")  # the SDK never asserts its own identity to a server
    with pytest.raises(AuthenticationError):
        _store(server, None, monkeypatch, tmp_path).list()
    with pytest.raises(PermissionDeniedError):
        _store(server, "viewer", monkeypatch, tmp_path).apply(_definitions(tmp_path))
    editor = _store(server, "editor", monkeypatch, tmp_path)
    assert editor.apply(_definitions(tmp_path)).has_changes
    assert editor.describe("zones")["creator"] == "editor"
    viewer = _store(server, "viewer", monkeypatch, tmp_path)  # reads, including those asked in a POST body
    assert [v.name for v in viewer.list("feature_view")] == ["zones"]
    entities = pd.DataFrame({"zone_id": [1, 2, 3], "event_timestamp": [datetime(2026, 1, 2, tzinfo=UTC)] * 3})
    frame = viewer.training_set(entities, ["zones:x"])
    assert frame["x"].tolist()[0] == 1.5 and frame["x"].isna().tolist() == [False, True, True]
    assert not (tmp_path / "client" / "mloop.db").exists()


def test_a_training_set_body_over_the_limit_is_refused(server: AuthServer, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    store = _store(server, "editor", monkeypatch, tmp_path)
    store.apply(_definitions(tmp_path))
    rng = np.random.default_rng(0)
    rows = 200_000  # random keys and times: about a megabyte and a half of Parquet
    entities = pd.DataFrame({"zone_id": rng.integers(0, 1 << 40, rows),
                             "event_timestamp": pd.Timestamp("2026-01-02", tz="UTC")
                             + pd.to_timedelta(rng.integers(0, 10**12, rows), unit="us")})
    with pytest.raises(MloopError) as caught:
        store.training_set(entities, ["zones:x"])
    assert caught.value.field == "body" and f"{LIMIT:,} bytes" in str(caught.value)
