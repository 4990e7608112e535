"""Shared fixtures: isolated homes, and the real PostgreSQL, Redis and S3-compatible services.

Tests that need a service skip with the reason when it is absent, unless
MLOOP_REQUIRE_SERVICES=1 (set by .ci/run), where an absent service fails them.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("MLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("MLOOP_REQUIRE_SERVICES") == "1"
ROOT = Path(__file__).resolve().parent.parent


def service_missing(name: str, reason: str) -> None:
    """Skip (or, in CI, fail) a test whose service is not reachable."""
    message = f"{name} is not reachable: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (MLOOP_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test gets its own home and no stray configuration; subprocesses import this checkout."""
    for name in list(os.environ):
        ours = name.startswith("MLOOP_") and name != "MLOOP_REQUIRE_SERVICES" and not name.startswith("MLOOP_TEST_")
        if ours or name.startswith("MLFLOW_"):  # the mlflow client keeps its run's experiment there
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.chdir(tmp_path)
    isolated = {k: v for k, v in os.environ.items() if k.startswith(("MLOOP_", "MLFLOW_"))}
    yield
    # code under test may set variables itself (a CLI command run in-process exports its stores; the mlflow
    # client its experiment): put the isolated state back, so that monkeypatch's undo leaves nothing behind
    for name in [k for k in os.environ if k.startswith(("MLOOP_", "MLFLOW_")) and k not in isolated]:
        del os.environ[name]
    os.environ.update(isolated)
    # The SDK keeps one process-wide client made from the environment: the next test has another home.
    sdk = sys.modules.get("mloop._sdk")
    if sdk is not None and sdk._client is not None:
        sdk._client.writer.flush()
        sdk._client = None
    _forget_stores_under(tmp_path)


def _forget_stores_under(folder: Path) -> None:
    """Close the process-wide registry clients and engines of the SQLite files this test made: nothing opens them
    again, and kept for the session they held descriptors (past select's limit of 1024 after a few hundred tests)
    and a heap that made every full garbage collection slower."""
    logged = sys.modules.get("mloop.registry._log")
    if logged is not None:
        with logged._lock:
            for key, client in list(logged._clients.items()):
                if str(folder) in str(key[0]) and hasattr(client, "close"):
                    client.close()
                    del logged._clients[key]
    engines = sys.modules.get("mloop.store.sql.engine")
    if engines is None:
        return
    with engines._lock:
        for url, db in list(engines._databases.items()):
            if db.is_sqlite and str(folder) in url:
                db.dispose()
                del engines._databases[url]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:
        service_missing("PostgreSQL", str(exc).splitlines()[0])
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A PostgreSQL URL whose tables live in a fresh schema, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{sep}options=-csearch_path%3D{schema}"
    from mloop.store.sql import engine as engines

    for url, db in list(engines._databases.items()):
        if schema in url:
            db.dispose()
            del engines._databases[url]
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The Redis server; keys written under the test's namespace are removed afterwards."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
    except Exception as exc:
        service_missing("Redis", str(exc).splitlines()[0])
    yield REDIS_URL
    client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto's server mode) on 127.0.0.1 for the whole session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_missing("moto server", str(exc))
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the S3-compatible server; returns its s3:// URL."""
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "MLOOP_S3_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    name = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/mloop"


@pytest.fixture(params=["direct", "server"])
def mode_settings(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Client settings in each of the two modes a user runs: the stores directly, or a live ``mloop server``.

    In ``server`` mode the client's home holds no database and no artifacts: a test that finds files there, or a
    direct-mode call that slips through, shows the client reaching past the server. ``MLOOP_TRACKING_URI`` is set
    too, so code that builds its own settings from the environment (the SDK's module functions, CLI commands run
    in-process) takes the same path.
    """
    from mloop.config import Settings

    client_home = tmp_path / "client-home"
    if request.param == "direct":
        monkeypatch.setenv("MLOOP_HOME", str(client_home))
        yield Settings.load(home=str(client_home))
        return
    from tests.server.conftest import serve

    for server in serve(Settings.load(home=str(tmp_path / "server-home"))):
        monkeypatch.setenv("MLOOP_HOME", str(client_home))
        monkeypatch.setenv("MLOOP_TRACKING_URI", server.url)
        yield Settings.load(home=str(client_home), tracking_uri=server.url)
