"""A live mloop server for the mlflow client, which finds it through ``MLFLOW_TRACKING_URI``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mloop.config import Settings
from tests.server.conftest import LiveServer, serve

pytest.importorskip("mlflow", reason="the mlflow client (mlflow-skinny, in the dev extra) is not installed")


@pytest.fixture
def mlflow_server(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A server on SQLite with the mlflow client pointed at it (no artifact store the client could reach)."""
    settings = Settings.load(home=str(tmp_path / "server-home"), db_url=f"sqlite:///{tmp_path / 'meta.db'}")
    for live in serve(settings):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", live.url)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # an error answers at once, not after retries
        yield live


@pytest.fixture
def tracking(mlflow_server: LiveServer):
    """mloop's tracking repository over the server's own stores, to make runs until the tracking API merges."""
    from mloop.tracking.client import open_repository

    return open_repository(mlflow_server.settings)


@pytest.fixture
def run_id(tracking) -> str:
    experiment = tracking.create_experiment("mlflow-artifacts")
    return tracking.create_run(experiment.experiment_id, "proxy", "tester", {}, None, "").run_id
