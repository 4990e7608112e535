"""A real mloop server on 127.0.0.1 (uvicorn in a thread), per test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from mloop.config import Settings
from mloop.server import create_app
from tests.conftest import free_port


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: Any = None  # the app the server runs, to look at its state after real requests


def serve(settings: Settings) -> Iterator[LiveServer]:
    port = free_port()
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield LiveServer(url, settings, app)
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def live_server(tmp_path, db_url: str) -> Iterator[LiveServer]:
    yield from serve(Settings.load(home=str(tmp_path / "server-home"), db_url=db_url))


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client on the module's own ``server`` fixture."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
