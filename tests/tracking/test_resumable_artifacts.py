"""A run's large artifacts through ``mloop server``: uploaded in chunks and downloaded with HTTP Range, so a
connection cut part way (a real TCP proxy on 127.0.0.1) costs one chunk, not the whole file; and a chunk can
only ever become the artifact its upload named, with the bytes it announced."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mloop.config import Settings
from mloop.errors import DataIntegrityError
from mloop.tracking._http import HttpTrackingRepository
from tests.server.conftest import LiveServer, serve
from tests.server.proxy import CuttingProxy

CHUNK = 1 << 20  # small chunks keep the test quick; the client's default is 8 MiB


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from serve(Settings.load(home=str(tmp_path / "server-home")))


def _run(repo: HttpTrackingRepository) -> str:
    experiment = repo.create_experiment(f"big-{uuid.uuid4().hex[:6]}")
    return repo.create_run(experiment.experiment_id, None, "ana", {}, None, "").run_id


def test_a_cut_upload_and_a_cut_download_each_resume(server: LiveServer, tmp_path: Path) -> None:
    data = os.urandom(6 * CHUNK + 4321)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    proxy = CuttingProxy(server.url, cut_after=int(len(data) * 0.55))
    try:
        repo = HttpTrackingRepository(proxy.url, chunk_bytes=CHUNK)
        run_id = _run(repo)
        artifact = repo.put_artifact(run_id, "model/weights.bin", source)
        assert artifact.sha256 == hashlib.sha256(data).hexdigest() and artifact.size == len(data)
        assert proxy.cuts["up"] == 1
        assert len(data) < proxy.sent["up"] < len(data) + CHUNK + 64 * 1024  # the cut chunk again, no more
        assert not list(Path(server.settings.home, "uploads").iterdir())  # no staging file left

        down_before = proxy.sent["down"]
        got = repo.get_artifact(run_id, "model/weights.bin", tmp_path / "back.bin")
        assert got.read_bytes() == data
        assert proxy.cuts["down"] == 1
        assert proxy.sent["down"] - down_before < len(data) * 1.05  # resumed from the cut, not from byte 0
        assert not (tmp_path / "back.bin.part").exists()
    finally:
        proxy.close()


def test_a_chunk_becomes_only_the_artifact_it_names_with_the_bytes_it_announced(server: LiveServer,
                                                                                 tmp_path: Path) -> None:
    repo = HttpTrackingRepository(server.url, chunk_bytes=CHUNK)
    run_id, other_run = _run(repo), _run(repo)
    data = os.urandom(2 * CHUNK)
    upload = uuid.uuid4().hex
    claimed = hashlib.sha256(b"something else").hexdigest()
    base = f"{server.url}/api/runs/{run_id}/artifacts/a.bin"
    first = httpx.put(base, content=data[:CHUNK], timeout=30,
                      params={"upload": upload, "offset": 0, "size": len(data), "sha256": claimed})
    assert first.status_code == 200 and first.json() == {"received": CHUNK}
    # the same upload id for another run or path starts from nothing: it cannot append to the first one
    elsewhere = httpx.put(f"{server.url}/api/runs/{other_run}/artifacts/a.bin", content=data[CHUNK:], timeout=30,
                          params={"upload": upload, "offset": CHUNK, "size": len(data), "sha256": claimed})
    assert elsewhere.status_code == 200 and elsewhere.json() == {"received": 0}
    # the last chunk completes the file, whose sha256 is not the one announced: nothing is stored
    last = httpx.put(base, content=data[CHUNK:], timeout=30,
                     params={"upload": upload, "offset": CHUNK, "size": len(data), "sha256": claimed})
    assert last.status_code == 409 and last.json()["error_code"] == DataIntegrityError.error_code, last.text
    assert repo.list_artifacts(run_id) == [] and repo.list_artifacts(other_run) == []
    assert not list(Path(server.settings.home, "uploads").iterdir())  # the refused file is not kept either

    partial = httpx.put(base, content=b"x", timeout=30, params={"upload": upload, "offset": 0})
    assert partial.status_code == 422 and partial.json()["field"] == "upload"
    for bad in ({"upload": "../../mloop.db"}, {"sha256": "zz"}, {"offset": -1}):
        params = {"upload": upload, "offset": 0, "size": 1, "sha256": claimed, **bad}
        answer = httpx.put(base, content=b"x", timeout=30, params=params)
        assert answer.status_code == 422, (bad, answer.text)
    unknown = httpx.put(f"{server.url}/api/runs/{'0' * 32}/artifacts/a.bin", content=b"x", timeout=30,
                        params={"upload": upload, "offset": 0, "size": 1, "sha256": claimed})
    assert unknown.status_code == 404
