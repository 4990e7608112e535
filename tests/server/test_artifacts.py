"""Artifact bytes through a real mloop server on 127.0.0.1: uploads are bounded (413) and streamed, and a file
changed in the store after it was logged is refused on download, never served silently."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mloop.config import Settings
from mloop.errors import DataIntegrityError, InvalidInputError, MloopError
from mloop.tracking import TrackingClient
from tests.server.conftest import LiveServer, serve

LIMIT = 10_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from serve(Settings.load(home=str(tmp_path / "server-home"), max_artifact_bytes=LIMIT))


def new_run(api: httpx.Client) -> str:
    experiment = api.post("/api/experiments", json={"name": "artifacts"}).json()["experiment_id"]
    return str(api.post("/api/runs", json={"experiment_id": experiment}).json()["run_id"])


# ---------------------------------------------------------------- the size limit
def test_an_upload_over_the_limit_is_413_with_a_json_error(api: httpx.Client, server: LiveServer) -> None:
    run_id = new_run(api)
    url = f"/api/runs/{run_id}/artifacts/big.bin"
    declared = api.put(url, content=b"x" * (LIMIT + 1))
    assert declared.status_code == 413 and declared.json()["error_code"] == "REQUEST_TOO_LARGE"
    assert str(LIMIT) in declared.json()["message"] and declared.json()["field"] == "body"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the route must count as the bytes arrive
        for _ in range(50):
            yield b"y" * 1000

    counted = api.put(url, content=chunked())
    assert counted.status_code == 413 and "max_artifact_bytes" in counted.json()["message"]
    assert api.get(f"/api/runs/{run_id}/artifacts").json() == []
    assert not list(Path(server.settings.artifact_root).rglob("big.bin"))
    assert not any(Path(server.settings.home, "tmp").iterdir())  # no spooled upload left behind
    exact = api.put(url, content=b"z" * LIMIT)
    assert exact.status_code == 201 and exact.json()["sha256"] == hashlib.sha256(b"z" * LIMIT).hexdigest()
    assert api.get(url).content == b"z" * LIMIT


def test_an_upload_the_file_system_cannot_hold_is_a_422_naming_the_path(api: httpx.Client) -> None:
    """Each of these was a 500 (FileExistsError, IsADirectoryError, ENAMETOOLONG) with a reset connection."""
    run_id = new_run(api)
    for path in ("file.txt", "folder/inside.txt"):
        assert api.put(f"/api/runs/{run_id}/artifacts/{path}", content=b"x").status_code == 201
    for path in ("file.txt/under", "folder", "a" * 300):
        answer = api.put(f"/api/runs/{run_id}/artifacts/{path}", content=b"x")
        assert answer.status_code == 422, (path, answer.text[:200])
        assert answer.json()["field"] == "path"
    assert sorted(a["path"] for a in api.get(f"/api/runs/{run_id}/artifacts").json()) == [
        "file.txt", "folder/inside.txt"]


def test_the_sdk_through_the_server_gets_the_limit_as_an_error(server: LiveServer, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOOP_TRACKING_URI", server.url)
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * (LIMIT * 3))
    with TrackingClient(Settings.load()).start_run("limits") as run, pytest.raises(MloopError, match="too large"):
        run.log_artifact(big)


def test_the_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.load().max_artifact_bytes == 4 << 30
    monkeypatch.setenv("MLOOP_MAX_ARTIFACT_BYTES", "12345")
    assert Settings.load().max_artifact_bytes == 12345
    for bad in ("0", "-5", "lots"):
        monkeypatch.setenv("MLOOP_MAX_ARTIFACT_BYTES", bad)
        with pytest.raises(InvalidInputError) as raised:
            Settings.load()
        assert raised.value.field == "max_artifact_bytes"


# ---------------------------------------------------------------- integrity on download
def corrupt(server: LiveServer, run_id: str, path: str) -> None:
    """Change a stored artifact behind mloop's back (a bad disk, a hand edit, another writer)."""
    stored = Path(server.settings.artifact_root, "runs", run_id, "artifacts", *path.split("/"))
    stored.write_bytes(stored.read_bytes().replace(b"good", b"evil"))


@pytest.mark.parametrize("mode", ["direct", "server"])
def test_a_changed_artifact_is_refused_on_download(server: LiveServer, tmp_path: Path, mode: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "server":
        monkeypatch.setenv("MLOOP_TRACKING_URI", server.url)
    else:
        monkeypatch.setenv("MLOOP_HOME", server.settings.home)
    client = TrackingClient(Settings.load())
    with client.start_run("integrity") as run:
        logged = run.log_text("good data", "reports/a.txt")
        run.log_text("good too", "reports/b.txt")
    corrupt(server, run.run_id, "reports/a.txt")
    with pytest.raises(DataIntegrityError) as raised:
        client.download_artifacts(run.run_id, "reports/a.txt", tmp_path / "a.txt")
    actual = hashlib.sha256(b"evil data").hexdigest()
    assert (raised.value.field, raised.value.path) == ("path", "reports/a.txt")
    assert logged.sha256 in raised.value.message and actual in raised.value.message
    assert not (tmp_path / "a.txt").exists() and not list(tmp_path.glob("a.txt*"))
    with pytest.raises(DataIntegrityError):  # a folder download stops at the changed file
        client.download_artifacts(run.run_id, "reports", tmp_path / "all")
    assert client.download_artifacts(run.run_id, "reports/b.txt", tmp_path / "b.txt").read_text() == "good too"


def test_the_rest_route_refuses_a_changed_artifact(api: httpx.Client, server: LiveServer) -> None:
    run_id = new_run(api)
    assert api.put(f"/api/runs/{run_id}/artifacts/model.bin", content=b"good bytes").status_code == 201
    corrupt(server, run_id, "model.bin")
    answer = api.get(f"/api/runs/{run_id}/artifacts/model.bin")
    assert answer.status_code == 409 and answer.json()["error_code"] == "INTEGRITY_ERROR"
    assert answer.json()["field"] == "path" and "model.bin" in answer.json()["message"]
    assert b"evil" not in answer.content


def test_the_http_client_checks_what_it_receives(server: LiveServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes changed between the server's store and the client (here: a server that skips its own check) are
    caught by the client, which hashes the stream as it arrives."""
    import mloop.tracking._sql as sql

    monkeypatch.setattr(sql, "verify_download", lambda artifact, target: None)
    monkeypatch.setenv("MLOOP_TRACKING_URI", server.url)
    client = TrackingClient(Settings.load())
    with client.start_run("integrity") as run:
        run.log_text("good data", "a.txt")
    corrupt(server, run.run_id, "a.txt")
    with pytest.raises(DataIntegrityError, match="a.txt"):
        client.download_artifacts(run.run_id, "a.txt", tmp_path / "a.txt")
    assert not list(tmp_path.glob("a.txt*"))
