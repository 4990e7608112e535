"""The BlobStore contract, on a local folder and on an S3-compatible server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mloop.errors import NotFoundError
from mloop.store.blob import BlobStore, open_blob_store


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return open_blob_store(str(tmp_path / "blobs"))
    return open_blob_store(request.getfixturevalue("s3_bucket"))


def test_put_get_list_delete(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"abc" * 100_000)
    info = blobs.put_file("runs/r1/model.bin", source)
    assert info.size == 300_000 and info.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    blobs.put_bytes("runs/r1/notes/a.txt", b"hello")
    blobs.put_bytes("runs/r2/b.txt", b"other")
    assert blobs.list("runs/r1") == ["runs/r1/model.bin", "runs/r1/notes/a.txt"]
    assert blobs.get_bytes("runs/r1/notes/a.txt") == b"hello"
    blobs.get_file("runs/r1/model.bin", tmp_path / "out" / "m.bin")
    assert (tmp_path / "out" / "m.bin").read_bytes() == source.read_bytes()
    assert blobs.exists("runs/r2/b.txt") and not blobs.exists("runs/r2/zzz")
    assert blobs.delete("runs/r1") == 2
    assert blobs.list("runs/r1") == [] and blobs.list("runs") == ["runs/r2/b.txt"]
    with pytest.raises(NotFoundError):
        blobs.get_bytes("runs/r1/notes/a.txt")


@pytest.mark.parametrize("size", [1_000, 3 << 20], ids=["small", "large"])  # either side of local OVERLAP_MIN
def test_put_content_names_the_blob_by_its_sha256_and_stores_it_once(blobs: BlobStore, size: int) -> None:
    data = bytes(range(256)) * (size // 256)
    digest = hashlib.sha256(data).hexdigest()
    info = blobs.put_content(memoryview(data), lambda sha: f"cas/{sha[:2]}/{sha}")
    assert (info.key, info.size, info.sha256) == (f"cas/{digest[:2]}/{digest}", len(data), digest)
    assert blobs.put_content(data, lambda sha: f"cas/{sha[:2]}/{sha}") == info
    assert blobs.list("") == [info.key]  # stored once, no temporary file left behind
    assert blobs.get_bytes(info.key) == data


def test_overwrite_is_atomic_and_leaves_no_temporary_files(blobs: BlobStore) -> None:
    blobs.put_bytes("k/v.txt", b"one")
    blobs.put_bytes("k/v.txt", b"two")
    assert blobs.get_bytes("k/v.txt") == b"two"
    assert blobs.list("k") == ["k/v.txt"]


def test_failed_local_write_leaves_the_old_version(tmp_path: Path) -> None:
    blobs = open_blob_store(str(tmp_path / "b"))
    blobs.put_bytes("x.bin", b"good")

    def chunks():  # type: ignore[no-untyped-def]
        yield b"partial"
        raise OSError("disk full")

    with pytest.raises(OSError):
        blobs._write("x.bin", chunks())  # type: ignore[attr-defined]
    assert blobs.get_bytes("x.bin") == b"good"
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["x.bin"]


def test_runs_store_artifacts_on_s3(s3_bucket: str, tmp_path: Path) -> None:
    from mloop.config import Settings
    from mloop.tracking import TrackingClient

    client = TrackingClient(Settings.load(home=str(tmp_path / "h"), artifact_root=s3_bucket))
    with client.start_run("s3") as run:
        art = run.log_text("on s3", "notes/s3.txt")
    assert run.info.artifact_uri.startswith("s3://")
    out = client.download_artifacts(run.run_id, "notes/s3.txt", tmp_path / "got.txt")
    assert out.read_text() == "on s3" and art.sha256 == hashlib.sha256(b"on s3").hexdigest()
