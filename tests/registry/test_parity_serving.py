"""Serving resolves its model through an mloop server with authentication on: ``mloop serve models:/m@champion``
and ``mloop batch-predict`` with nothing but ``MLOOP_TRACKING_URI`` and a service account's token.

Also the edges of the files route: a path outside the version, a name the manifest does not list, a token that
is missing, and a server that sends a file whose bytes differ from the manifest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from mloop.errors import AuthenticationError, DataIntegrityError, PermissionDeniedError
from mloop.registry import load_model, registry_for
from mloop.tracking import TrackingClient
from tests.auth.conftest import AuthServer, start
from tests.registry.conftest import log_version
from tests.serving.conftest import serve_process


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline, frame) -> Iterator[AuthServer]:  # type: ignore[no-untyped-def]
    """A server with auth on, 'eta' v1 logged by the editor and made champion by the maintainer, and a service
    account 'serving' (viewer) whose token a serving process uses."""
    for server in start(tmp_path, f"sqlite:///{tmp_path / 'server.db'}", monkeypatch):
        server.store.add_user("serving", service_account=True)
        server.store.grant("serving", "default", "viewer")
        server.tokens["serving"] = server.store.create_token("serving").text
        client_home = tmp_path / "client-home"
        monkeypatch.setenv("MLOOP_HOME", str(client_home))
        monkeypatch.setenv("MLOOP_TRACKING_URI", server.url)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no stored `mloop login` token
        settings = Settings.load(home=str(client_home), tracking_uri=server.url)
        monkeypatch.setenv("MLOOP_TOKEN", server.tokens["editor"])
        log_version(TrackingClient(settings), pipeline, frame)
        monkeypatch.setenv("MLOOP_TOKEN", server.tokens["maintainer"])
        registry_for(settings).set_alias("eta", "champion", 1)
        monkeypatch.setenv("MLOOP_TOKEN", server.tokens["serving"])
        yield server


def _client_home_is_clean(home: Path) -> None:
    assert not list(home.rglob("*.db")) and not (home / "artifacts").exists()


def test_the_audit_actor_is_the_token_identity(team: AuthServer, tmp_path: Path) -> None:
    settings = Settings.load()
    audit = registry_for(settings).audit("eta")
    assert {(e.action, e.actor) for e in audit} >= {("version.created", "editor"), ("alias.set", "maintainer")}
    assert registry_for(settings).get_version("eta", 1).creator == "editor"
    with pytest.raises(PermissionDeniedError):  # the service account reads, and may not move the alias
        registry_for(settings).set_alias("eta", "champion", 1)


def test_mloop_serve_answers_through_the_server(team: AuthServer, tmp_path: Path, pipeline, frame,  # type: ignore[no-untyped-def]
                                               ) -> None:
    rows = frame.head(5)
    with serve_process(["models:/eta@champion", "--no-log", "--reload-seconds", "0"]) as (url, _):
        answer = httpx.post(f"{url}/predict/eta", json={"records": rows.to_dict(orient="records")}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == "1"
    np.testing.assert_allclose(body["predictions"], pipeline.predict(rows))
    _client_home_is_clean(tmp_path / "client-home")


def test_mloop_serve_follows_an_alias_moved_on_the_server(team: AuthServer, tmp_path: Path, pipeline, frame,  # type: ignore[no-untyped-def]
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The serving process polls the server for the alias and reloads the new version's files through it."""
    import time

    rows = frame.head(3)
    with serve_process(["models:/eta@champion", "--no-log", "--reload-seconds", "0.3"]) as (url, _):
        settings = Settings.load()
        monkeypatch.setenv("MLOOP_TOKEN", team.tokens["maintainer"])
        shifted = pipeline.set_params(model__alpha=50.0).fit(frame, frame["distance_km"] * 3)
        log_version(TrackingClient(settings), shifted, frame)
        registry_for(Settings.load()).set_alias("eta", "champion", 2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = httpx.post(f"{url}/predict/eta", json={"records": rows.to_dict(orient="records")}, timeout=30)
            if answer.json().get("version") == "2":
                break
            time.sleep(0.2)
    assert answer.json()["version"] == "2", answer.text
    np.testing.assert_allclose(answer.json()["predictions"], shifted.predict(rows))
    _client_home_is_clean(tmp_path / "client-home")


def test_mloop_serve_without_a_token_says_why(team: AuthServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLOOP_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "mloop", "serve", "models:/eta@champion", "--port", "1"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "Traceback" not in said and "This server needs a token" in said, said


def test_batch_predict_through_the_server(team: AuthServer, tmp_path: Path, pipeline, frame,  # type: ignore[no-untyped-def]
                                          ) -> None:
    from typer.testing import CliRunner

    from mloop.cli import _register, app

    frame.to_csv(tmp_path / "in.csv", index=False)
    _register()
    result = CliRunner().invoke(app, ["batch-predict", "models:/eta@champion", "--input", str(tmp_path / "in.csv"),
                                      "--output", str(tmp_path / "out"), "--chunk-rows", "25"])
    assert result.exit_code == 0, result.output
    assert "version 1" in result.output
    scored = pd.read_parquet(tmp_path / "out").sort_values("distance_km")
    expected = pd.Series(pipeline.predict(frame), index=frame.index).loc[scored.index]
    np.testing.assert_allclose(scored["prediction"], expected)
    _client_home_is_clean(tmp_path / "client-home")


def test_the_files_route_stays_inside_the_version(team: AuthServer) -> None:
    with team.client("serving") as viewer:
        base = "/api/registry/models/eta/versions/1/files"
        assert viewer.get(f"{base}/mloop-model.yaml").status_code == 200
        for escape in ("../../../server.db", "..%2F..%2Fserver.db", "%2e%2e/%2e%2e/server.db", "/etc/passwd"):
            answer = viewer.get(f"{base}/{escape}")
            assert answer.status_code in (404, 422), (escape, answer.status_code)
            assert b"SQLite format" not in answer.content
        unlisted = viewer.get(f"{base}/not-in-manifest.bin")
        assert unlisted.status_code == 404 and "has no file 'not-in-manifest.bin'" in unlisted.json()["message"]
    with team.client(None) as anonymous:
        assert anonymous.get(f"{base}/mloop-model.yaml").status_code == 401


def test_a_load_without_a_token_is_refused(team: AuthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOOP_TOKEN")
    with pytest.raises(AuthenticationError):
        load_model("models:/eta@champion")


def test_bytes_that_differ_from_the_manifest_never_load(team: AuthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server (or anything between) that changes a model file is caught as the bytes arrive."""
    registry = registry_for(Settings.load())
    manifest = registry.manifest("eta", 1)
    victim = next(name for name in manifest["files"] if name != "input_example.json")
    served = registry_for(team.server.settings)
    storage = served.get_version("eta", 1).storage
    path = Path(served.blobs.local_path(f"{storage}/{victim}"))
    path.write_bytes(path.read_bytes() + b"!")
    with pytest.raises(DataIntegrityError):
        load_model("models:/eta/1")
    assert not list((Path(Settings.load().home) / "cache" / "models").glob("[0-9a-f]*"))  # nothing half-cached


def test_the_upload_route_is_bounded_confined_and_cleaned(team: AuthServer) -> None:
    import dataclasses

    app_state = team.server.app.state
    app_state.settings = dataclasses.replace(app_state.settings, max_artifact_bytes=1000)
    upload = "/api/registry/uploads/" + "a" * 32
    with team.client("editor") as editor, team.client("viewer") as viewer:
        assert viewer.put(f"{upload}/x.bin", content=b"1").status_code == 403
        too_big = editor.put(f"{upload}/x.bin", content=b"1" * 1001)
        assert too_big.status_code == 413 and "at most 1000 bytes" in too_big.json()["message"]
        for escape in ("../../../x.bin", "%2e%2e/%2e%2e/x.bin", "..%2F..%2Fx.bin"):
            # refused by the route (404/422), or normalized by the client into a path no upload route serves (415)
            assert editor.put(f"{upload}/{escape}", content=b"1").status_code in (404, 415, 422), escape
        home = Path(team.server.settings.home)
        assert not [p for p in home.rglob("x.bin")]
        assert editor.put("/api/registry/uploads/not-an-id/x.bin", content=b"1").status_code == 422
        assert editor.put(f"{upload}/x.bin", content=b"1").status_code == 201
        assert editor.put(f"{upload}/bad%0Fname.bin", content=b"1").status_code == 422
        refused = editor.post("/api/registry/models/eta/uploads/" + "a" * 32, json={"origin": "/tmp/m"})
        assert refused.status_code == 404 and "no mloop-model.yaml" in refused.json()["message"]
        missing = editor.post("/api/registry/models/eta/uploads/" + "b" * 32, json={"origin": "/tmp/m"})
        assert missing.status_code == 404 and "Nothing was uploaded" in missing.json()["message"]
    served = registry_for(team.server.settings)
    assert served.blobs.list("uploads") == []  # a refused upload is removed too
