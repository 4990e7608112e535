"""MLflow's artifact proxy with the real mlflow client: a client that cannot reach the store logs and loads
through the server, and every hostile path or body is refused without touching the store."""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mloop.config import Settings
from tests.server.conftest import serve
from tests.server.mlflow import _registry_fixtures as fixtures

# this module's fixtures: a fresh server per test, runs made through mloop's own store
mlflow_server = fixtures.mlflow_server
run_id = fixtures.run_id
tracking = fixtures.tracking

PREFIX = "/api/2.0/mlflow-artifacts/artifacts"


def _repo(server, run_id: str):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(f"mlflow-artifacts:/1/{run_id}/artifacts")


def test_log_list_download_delete_through_the_proxy(mlflow_server, tracking, run_id, tmp_path):
    report = tmp_path / "report.csv"
    report.write_text("zone,trips\nJFK,17\nLGA,\n")
    repo = _repo(mlflow_server, run_id)
    repo.log_artifact(str(report), "reports/daily")
    repo.log_artifact(str(report))

    assert [(f.path, f.is_dir, f.file_size) for f in repo.list_artifacts()] == [
        ("report.csv", False, report.stat().st_size), ("reports", True, None)]
    assert [f.path for f in repo.list_artifacts("reports/daily")] == ["reports/daily/report.csv"]
    # the run's own artifact table lists what came through the proxy: mloop's SDK sees the same files
    assert sorted(a.path for a in tracking.list_artifacts(run_id)) == ["report.csv", "reports/daily/report.csv"]
    (tmp_path / "down").mkdir()
    local = repo.download_artifacts("reports", str(tmp_path / "down"))
    assert Path(local, "daily", "report.csv").read_text() == report.read_text()

    repo.delete_artifacts("reports")
    assert [a.path for a in tracking.list_artifacts(run_id)] == ["report.csv"]


def test_a_large_file_comes_in_parts(mlflow_server, tracking, run_id, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(64 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(40 * 1024))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(200 * 1024 + 17))  # six parts, the last one short
    _repo(mlflow_server, run_id).log_artifact(str(weights), "model")

    spool = Path(mlflow_server.settings.home, "tmp", "mpu")
    assert spool.is_dir() and not any(spool.iterdir())  # the upload went through mpu/*, and left nothing behind
    stored = tracking.list_artifacts(run_id, "model")
    assert [(a.path, a.size) for a in stored] == [("model/weights.bin", weights.stat().st_size)]
    back = _repo(mlflow_server, run_id).download_artifacts("model/weights.bin", str(tmp_path))
    assert Path(back).read_bytes() == weights.read_bytes()


def test_a_part_with_other_bytes_than_its_etag_is_refused(mlflow_server, run_id):
    with httpx.Client(base_url=mlflow_server.url) as api:
        created = api.post(f"/api/2.0/mlflow-artifacts/mpu/create/1/{run_id}/artifacts",
                           json={"path": "w.bin", "num_parts": 2}).json()
        urls = [c["url"] for c in created["credentials"]]
        etags = [httpx.put(url, content=b"x" * 10).headers["etag"] for url in urls]
        done = api.post(f"/api/2.0/mlflow-artifacts/mpu/complete/1/{run_id}/artifacts",
                        json={"path": "w.bin", "upload_id": created["upload_id"],
                              "parts": [{"part_number": 1, "etag": etags[0]}, {"part_number": 2, "etag": "0" * 64}]})
        assert done.status_code == 400 and "part 2" in done.json()["message"]
        unknown = httpx.put(urls[0].rsplit("/", 2)[0] + "/" + "0" * 32 + "/1", content=b"x")
        assert unknown.status_code == 404 and unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        # an upload abandoned for a day loses its parts when the next upload starts
        spool = Path(mlflow_server.settings.home, "tmp", "mpu", created["upload_id"])
        os.utime(spool, (0, 0))
        api.post(f"/api/2.0/mlflow-artifacts/mpu/create/1/{run_id}/artifacts", json={"path": "n.bin"})
        assert not spool.exists()


def _raw(server_url: str, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """A request whose path goes out byte for byte (httpx would normalize '..' away)."""
    parts = urlsplit(server_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, path, body=body or None, headers={"content-type": "application/octet-stream"})
    answer = conn.getresponse()
    return answer.status, answer.read()


@pytest.mark.parametrize("evil", [
    "1/{run}/artifacts/../../../../etc/passwd",
    "1/{run}/artifacts/%2e%2e/%2e%2e/%2e%2e/secret",
    "1/{run}/artifacts/%252e%252e/secret",
    "1/{run}/artifacts//etc/passwd",
    "1/{run}/artifacts/a%00b",
    "1/../../{run}/artifacts/x",
    "1/models/m-{run}/artifacts/../../../runs/{run}/artifacts/x",
])
def test_paths_that_leave_their_root_are_refused(mlflow_server, run_id, evil):
    home = Path(mlflow_server.settings.home)
    before = sorted(p for p in home.rglob("*") if p.is_file())
    path = f"{PREFIX}/{evil.format(run=run_id)}"
    for method, body in (("PUT", b"owned"), ("GET", b""), ("DELETE", b"")):
        status, text = _raw(mlflow_server.url, method, path, body)
        assert 400 <= status < 500, (method, path, status, text)
        assert b"Traceback" not in text
    assert sorted(p for p in home.rglob("*") if p.is_file()) == before


def test_a_symlink_out_of_the_store_is_not_followed(mlflow_server, tracking, run_id, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2")
    report = tmp_path / "ok.txt"
    report.write_text("fine")
    tracking.put_artifact(run_id, "ok.txt", report)
    folder = Path(tracking.blobs.local_path(f"runs/{run_id}/artifacts"))
    (folder / "link").symlink_to(tmp_path)
    status, text = _raw(mlflow_server.url, "GET", f"{PREFIX}/1/{run_id}/artifacts/link/secret.txt")
    assert status in (400, 404) and b"hunter2" not in text
    listing = httpx.get(mlflow_server.url + PREFIX, params={"path": f"1/{run_id}/artifacts/link"}).json()
    assert listing == {"files": []}


def test_registered_files_are_read_only(mlflow_server):
    status, text = _raw(mlflow_server.url, "PUT", f"{PREFIX}/registry/models/{'a' * 32}/MLmodel", b"x")
    assert status == 403 and b"PERMISSION_DENIED" in text


def test_an_upload_over_the_limit_is_refused_and_nothing_is_stored(tmp_path):
    settings = Settings.load(home=str(tmp_path / "h"), db_url=f"sqlite:///{tmp_path / 'm.db'}",
                             max_artifact_bytes=1000)
    for live in serve(settings):
        from mloop.tracking.client import open_repository

        repo = open_repository(settings)
        run = repo.create_run(repo.create_experiment("limits").experiment_id, "r", "u", {}, None, "")
        answer = httpx.put(f"{live.url}{PREFIX}/1/{run.run_id}/artifacts/big.bin", content=b"x" * 1001)
        assert answer.status_code == 413 and answer.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        streamed = httpx.put(f"{live.url}{PREFIX}/1/{run.run_id}/artifacts/big.bin",
                             content=iter([b"x" * 600, b"x" * 600]))  # no Content-Length: counted as it streams
        assert streamed.status_code == 413
        assert repo.list_artifacts(run.run_id) == []


def test_a_missing_run_or_file_is_resource_does_not_exist(mlflow_server, run_id, tmp_path):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        _repo(mlflow_server, run_id).download_artifacts("nothing.txt", str(tmp_path))
    answer = httpx.put(f"{mlflow_server.url}{PREFIX}/1/{'f' * 32}/artifacts/x.txt", content=b"x")
    assert answer.status_code == 404 and answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
