"""A live mloop server for the mlflow client: one per test module (SQLite), the client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mloop.config import Settings
from tests.server.conftest import LiveServer, serve

# the mlflow client reports usage to the internet unless told not to; tests stay on 127.0.0.1
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("mlflow-server")
    yield from serve(Settings.load(home=str(root / "home"), db_url=f"sqlite:///{root / 'meta.db'}"))


@pytest.fixture
def tracking_uri(mlflow_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``MLFLOW_TRACKING_URI`` at the live server, for the mlflow client in this process and in subprocesses."""
    mlflow = pytest.importorskip("mlflow")
    for name, value in {**QUIET, "MLFLOW_TRACKING_URI": mlflow_server.url}.items():
        monkeypatch.setenv(name, value)
    mlflow.set_tracking_uri(mlflow_server.url)
    yield mlflow_server.url
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    # set_experiment's choice names an experiment of this server only: the next test may talk to another
    import mlflow.tracking.fluent

    mlflow.tracking.fluent._active_experiment_id = None
