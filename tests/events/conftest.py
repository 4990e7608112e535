"""Event fixtures: settings that let webhooks reach 127.0.0.1, a receiver, and a process that leaves delivery to
workers (MLOOP_EVENTS_FLUSH_SECONDS=0) unless a test says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.config import Settings
from mloop.registry import RegistryClient
from tests.events.receiver import Receiver
from tests.registry.conftest import frame, pipeline  # noqa: F401  (fixtures)

SECRET = "s3cret-value"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MLOOP_EVENTS_FLUSH_SECONDS", "0")  # this test process delivers nothing itself
    return Settings.load(home=str(tmp_path / "h"), db_url=db_url, user="alice", webhook_allow_hosts="127.0.0.1")


@pytest.fixture
def registry(settings: Settings) -> RegistryClient:
    return RegistryClient(settings)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of an ``mloop`` subprocess on the same stores, importing this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    env.update(MLOOP_HOME=settings.home, MLOOP_DB_URL=settings.db_url, MLOOP_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
               PYTHONPATH=str(ROOT), COLUMNS="200", **extra)
    return env


def mloop_cli(settings: Settings, *args: str, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``mloop ARGS`` in a fresh process and wait for it to exit."""
    return subprocess.run([sys.executable, "-m", "mloop", *args], env=cli_env(settings, **extra), cwd=str(ROOT),
                          capture_output=True, text=True, timeout=timeout)



@pytest.fixture
def version(settings: Settings, registry: RegistryClient, pipeline, frame) -> int:  # type: ignore  # noqa: F811
    """Version 1 of model 'eta', logged from a real run and registered (its events go to no webhook yet)."""
    from mloop.tracking import TrackingClient
    from tests.registry.conftest import log_version

    return int(log_version(TrackingClient(settings), pipeline, frame).version)
