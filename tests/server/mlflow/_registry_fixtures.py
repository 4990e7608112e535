"""Fixtures of the registry, artifact and interop tests: a live mloop server per test with the mlflow client
pointed at it, and runs made through mloop's own store. Imported by those test modules (not a conftest, so that
the tracking tests' own fixtures keep their names)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mloop.config import Settings
from tests.server.conftest import LiveServer, serve

pytest.importorskip("mlflow", reason="the mlflow client (mlflow-skinny, in the dev extra) is not installed")

# no usage reports to the internet, and an error answers at once instead of after retries
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


@pytest.fixture
def mlflow_server(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A server on SQLite with the mlflow client pointed at it (no artifact store the client could reach)."""
    import mlflow

    settings = Settings.load(home=str(tmp_path / "server-home"), db_url=f"sqlite:///{tmp_path / 'meta.db'}")
    for live in serve(settings):
        for name, value in {**QUIET, "MLFLOW_TRACKING_URI": live.url}.items():
            monkeypatch.setenv(name, value)
        mlflow.set_tracking_uri(live.url)
        yield live
        mlflow.set_tracking_uri(None)
        import mlflow.tracking.fluent

        mlflow.tracking.fluent._active_experiment_id = None  # an experiment of this server only


@pytest.fixture
def tracking(mlflow_server: LiveServer):
    """mloop's tracking repository over the server's own stores, to make runs without MLflow's runs API."""
    from mloop.tracking.client import open_repository

    return open_repository(mlflow_server.settings)


@pytest.fixture
def run_id(tracking) -> str:
    experiment = tracking.create_experiment("mlflow-artifacts")
    return tracking.create_run(experiment.experiment_id, "proxy", "tester", {}, None, "").run_id
