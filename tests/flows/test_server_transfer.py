"""Flow artifacts through ``mloop server``: chunked uploads and ranged downloads that survive a broken connection
(a real TCP proxy on 127.0.0.1 cuts one transfer each way), names that cannot leave the server's stores, and the
token every request of the orchestrator and of its tasks carries."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mloop.flows as flows
from mloop.config import Settings
from mloop.errors import MloopError
from mloop.flows._http_store import CHUNK, HttpArtifactStore
from tests.server.conftest import LiveServer, serve
from tests.server.proxy import CuttingProxy


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from serve(Settings.load(home=str(tmp_path / "server-home")))


def _blob(server: LiveServer, sha: str) -> Path:
    return Path(server.settings.artifact_root, "flows", "cas", sha[:2], sha)


def test_a_large_artifact_moves_in_chunks_and_a_broken_transfer_resumes(server: LiveServer) -> None:
    data = os.urandom(5 * CHUNK + 12345)  # 40 MiB and a bit: six chunks
    size = len(data)
    proxy = CuttingProxy(server.url, cut_after=int(size * 0.55))  # inside the third chunk each way
    store = HttpArtifactStore(proxy.url)
    try:
        sha = store.put(data)
        assert sha == hashlib.sha256(data).hexdigest()
        assert proxy.cuts["up"] == 1
        # resumed, not restarted: the cut chunk went again, the chunks before it did not
        assert size < proxy.sent["up"] < size + CHUNK + 64 * 1024
        assert _blob(server, sha).read_bytes() == data
        assert not list(Path(server.settings.home, "uploads").iterdir())  # no staging file left

        got = store.get(sha)
        assert got == data and proxy.cuts["down"] == 1
        assert size < proxy.sent["down"] < size * 1.05  # the download went on from where it broke (a Range)
        assert store.put(data) == sha and proxy.sent["up"] < 2 * size  # stored already: not sent again
    finally:
        proxy.close()


def test_a_flow_hands_a_large_dataframe_between_steps_through_the_server(server: LiveServer, write_flow,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = CuttingProxy(server.url, cut_after=30 << 20)  # one upload and one download of the frame break
    monkeypatch.setenv("MLOOP_TRACKING_URI", proxy.url)
    file = str(write_flow("""
        import numpy as np
        import pandas as pd
        from mloop.flows import FlowSpec, step


        class Big(FlowSpec):
            @step
            def start(self):
                rng = np.random.default_rng(7)
                self.frame = pd.DataFrame({"x": rng.random(3_000_000), "y": rng.random(3_000_000)})  # ~48 MB
                self.next(self.end)

            @step
            def end(self):
                self.total = float(self.frame.x.sum() + self.frame.y.sum())
    """))
    try:
        run = flows.run(file, settings=Settings.load(tracking_uri=proxy.url))
        assert proxy.cuts == {"up": 1, "down": 1}
        frame = run["start"].task.data.frame
        assert len(frame) == 3_000_000 and run.data.total == pytest.approx(float(frame.x.sum() + frame.y.sum()))
    finally:
        proxy.close()


def test_the_server_refuses_names_that_would_leave_its_stores(server: LiveServer, tmp_path: Path) -> None:
    """The exploit: an upload id, a sha256 or an artifact name that climbs out of the server's folders."""
    sha = hashlib.sha256(b"x").hexdigest()
    with httpx.Client(base_url=server.url + "/api/flows", timeout=30) as api:
        climb = api.put(f"/cas/{sha}", params={"upload": "../../../../evil", "offset": 1, "size": 2}, content=b"x")
        assert climb.status_code == 422 and climb.json()["field"] == "upload"
        for path in ("/cas/..%2F..%2F..%2Fmloop.db", "/cas/%2E%2E", f"/cas/{sha}/uploads/..%2F..%2Fmloop.db",
                     f"/cas/{'../' * 8}etc/passwd"):
            answer = api.get(path)
            assert answer.status_code in (404, 422) and b"SQLite" not in answer.content, path
        task = uuid.uuid4().hex
        record = {"kind": "finish_task", "task_id": task, "status": "finished",
                  "artifacts": {"../../../../evil": [sha, "pickle", 1]}}
        refused = api.post("/records", json={"records": [record]})
        assert refused.status_code == 422 and "artifacts" in refused.json()["field"]
        wrong = api.put(f"/cas/{sha}", params={"upload": uuid.uuid4().hex, "offset": 0, "size": 1}, content=b"y")
        assert wrong.status_code == 409  # bytes that are not what their name says are not stored under it
    assert not list(tmp_path.rglob("evil*")) and not Path("/evil").exists()
    assert not _blob(server, sha).exists()


def test_every_request_of_a_flow_carries_the_token(tmp_path: Path, write_flow,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from mloop.auth import AuthStore

    db_url = f"sqlite:///{tmp_path / 'meta.db'}"
    settings = dataclasses.replace(Settings.load(home=str(tmp_path / "server-home"), db_url=db_url), auth=True)
    store = AuthStore(db_url)
    for role in ("viewer", "editor"):
        store.add_user(role)
        store.grant(role, "default", role)
    editor, viewer = store.create_token("editor").text, store.create_token("viewer").text
    file = str(write_flow("""
        from mloop.flows import FlowSpec, step


        class Tokened(FlowSpec):
            @step
            def start(self):
                self.rows = list(range(10))
                self.next(self.end)

            @step
            def end(self):
                self.total = sum(self.rows)
    """))
    for server in serve(settings):
        client = Settings.load(home=str(tmp_path / "client-home"), tracking_uri=server.url)
        monkeypatch.setenv("MLOOP_TOKEN", viewer)  # may read, may not write
        with pytest.raises(MloopError, match="(?i)permission|role|editor"):
            flows.run(file, settings=client)
        monkeypatch.delenv("MLOOP_TOKEN")
        with pytest.raises(MloopError, match="(?i)token|authenticat"):
            flows.run(file, settings=client)
        monkeypatch.setenv("MLOOP_TOKEN", editor)  # the tasks' processes inherit it
        run = flows.run(file, settings=client)
        assert run.successful and run.data.total == 45
        monkeypatch.setenv("MLOOP_TOKEN", viewer)
        assert flows.get_run(run.id, settings=client).data.total == 45
    assert not Path(tmp_path / "client-home").exists()


def test_a_client_with_direct_object_store_access_sends_only_metadata_through_the_server(
        server: LiveServer, write_flow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOOP_TRACKING_URI", server.url)
    monkeypatch.setenv("MLOOP_DIRECT_ARTIFACTS", "1")
    monkeypatch.setenv("MLOOP_ARTIFACT_ROOT", server.settings.artifact_root)  # the store the server uses too
    file = str(write_flow("""
        from mloop.flows import FlowSpec, step


        class Direct(FlowSpec):
            @step
            def start(self):
                self.payload = b"z" * 2_000_000
                self.next(self.end)

            @step
            def end(self):
                self.size = len(self.payload)
    """))
    client = Settings.load()
    assert client.remote and client.direct_artifacts
    proxy = CuttingProxy(server.url, cut_after=1 << 40)  # counts the bytes; cuts nothing
    run = flows.run(file, settings=Settings.load(tracking_uri=proxy.url))
    assert run.data.size == 2_000_000
    ref = run["start"].task.artifacts["payload"]
    assert _blob(server, ref.sha256).is_file()  # written by the task itself, straight into the store
    assert proxy.sent["up"] < 500_000 and proxy.cuts == {"up": 0, "down": 0}  # no bytes through the server
    assert not Path(client.home, "mloop.db").exists()
    proxy.close()


def test_gc_on_the_server_removes_uploads_their_client_gave_up(server: LiveServer) -> None:
    uploads = Path(server.settings.home, "uploads")
    uploads.mkdir(parents=True)
    abandoned, fresh = uploads / f"{'a' * 64}.{'b' * 32}", uploads / f"{'c' * 64}.{'d' * 32}"
    abandoned.write_bytes(b"half")
    fresh.write_bytes(b"going on")
    os.utime(abandoned, (0, 0))
    purged = httpx.post(server.url + "/api/gc", json={"older_than_ms": 0}, timeout=30)
    assert purged.status_code == 200 and purged.json()["files"] == 1
    assert not abandoned.exists() and fresh.exists()
