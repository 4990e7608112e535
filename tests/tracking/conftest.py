"""Every tracking test runs against SQLite, PostgreSQL, and through a live server (SDK over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.config import Settings
from mloop.tracking import TrackingClient


@pytest.fixture(params=["sqlite", "postgres", "http"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TrackingClient]:
    home = str(tmp_path / "h")
    if request.param == "sqlite":
        yield TrackingClient(Settings.load(home=home))
    elif request.param == "postgres":
        yield TrackingClient(Settings.load(home=home, db_url=request.getfixturevalue("postgres_url")))
    else:
        from tests.server.conftest import serve

        for server in serve(Settings.load(home=str(tmp_path / "server"))):
            yield TrackingClient(Settings.load(home=home, tracking_uri=server.url))
