"""The BlobStore contract, on a local folder and on an S3-compatible server."""

from __future__ import annotations

import functools
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from mloop.errors import InvalidInputError, NotFoundError
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


# ---------------------------------------------------------------- keys stay inside the root
# Each form a caller might hand a store to reach outside its root: plain, URL-encoded once and twice, absolute,
# Windows-style and with a NUL byte. Every one must be refused by every method, on every store.
ESCAPES = [
    "../outside.txt",
    "runs/r1/../../../outside.txt",
    "runs/%2e%2e/%2e%2e/outside.txt",
    "runs%2f..%2f..%2foutside.txt",
    "runs/%252e%252e%252f%252e%252e%252foutside.txt",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "runs\\..\\..\\outside.txt",
    "runs/..%5c..%5coutside.txt",
    "C:/Windows/win.ini",
    "runs/a\0.txt",
    "runs/%00.txt",
    "runs//double.txt",
    "runs/./here.txt",
    "",
]


@pytest.fixture(params=["local", "memory", "s3"])
def any_blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return open_blob_store(str(tmp_path / "root" / "blobs"))
    if request.param == "memory":
        return open_blob_store(f"memory://mloop-test-{uuid.uuid4().hex}/blobs")
    return open_blob_store(request.getfixturevalue("s3_bucket"))


def every_use(blobs: BlobStore, key: str, tmp_path: Path) -> list[functools.partial[Any]]:
    """Each store method called with ``key``: reads, writes, listing, deletion and URLs."""
    source = tmp_path / "payload.bin"
    source.write_bytes(b"payload")
    uses = [functools.partial(blobs.put_file, key, source), functools.partial(blobs.put_bytes, key, b"payload"),
            functools.partial(blobs.put_content, b"payload", lambda sha: key), functools.partial(blobs.get_bytes, key),
            functools.partial(blobs.get_file, key, tmp_path / "out.bin"), functools.partial(blobs.exists, key),
            functools.partial(blobs.delete, key), functools.partial(blobs.url, key)]
    return [*uses, functools.partial(blobs.list, key)] if key else uses  # "" lists the whole root: allowed


@pytest.mark.parametrize("key", ESCAPES, ids=range(len(ESCAPES)))
def test_every_method_refuses_a_key_that_leaves_the_root(any_blobs: BlobStore, tmp_path: Path, key: str) -> None:
    for use in every_use(any_blobs, key, tmp_path):
        with pytest.raises(InvalidInputError) as raised:
            use()
        assert raised.value.field == "path" and raised.value.value == key
    assert not (tmp_path / "root" / "outside.txt").exists() and not (tmp_path / "out.bin").exists()
    assert any_blobs.list("") == []


def test_a_sibling_root_is_out_of_reach(any_blobs: BlobStore) -> None:
    """Two stores side by side (two prefixes of one bucket): neither reaches the other's keys with '..'."""
    sibling = open_blob_store(any_blobs.root.rsplit("/", 1)[0] + "/sibling")
    sibling.put_bytes("secret.txt", b"sibling's secret")
    for key in ("../sibling/secret.txt", "%2e%2e/sibling/secret.txt", "%252e%252e%252fsibling/secret.txt"):
        with pytest.raises(InvalidInputError):
            any_blobs.get_bytes(key)
    assert sibling.get_bytes("secret.txt") == b"sibling's secret"


def test_names_that_only_look_odd_are_kept(any_blobs: BlobStore) -> None:
    for key in ("runs/r1/100%.txt", "runs/r1/a..b/c.txt", "runs/r1/.hidden", "runs/r1/x:y.txt", "runs/r1/%zz"):
        any_blobs.put_bytes(key, key.encode())
        assert any_blobs.get_bytes(key) == key.encode()
    assert any_blobs.list("runs/r1/") == sorted(
        ["runs/r1/%zz", "runs/r1/.hidden", "runs/r1/100%.txt", "runs/r1/a..b/c.txt", "runs/r1/x:y.txt"])


def test_a_symlink_inside_the_local_root_cannot_lead_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    blobs = open_blob_store(str(tmp_path / "blobs"))
    blobs.put_bytes("runs/r1/ok.txt", b"ok")
    (tmp_path / "blobs" / "runs" / "r1" / "link").symlink_to(outside, target_is_directory=True)
    (tmp_path / "blobs" / "runs" / "r1" / "file-link").symlink_to(outside / "secret.txt")
    (tmp_path / "blobs" / "inner").symlink_to(tmp_path / "blobs" / "runs", target_is_directory=True)
    for key in ("runs/r1/link/secret.txt", "runs/r1/file-link", "runs/r1/link/new.txt", "runs/r1/link"):
        for use in every_use(blobs, key, tmp_path):
            with pytest.raises(InvalidInputError, match="inside the artifact root"):
                use()
    with pytest.raises(InvalidInputError):
        blobs.local_path("runs/r1/link")  # type: ignore[attr-defined]
    assert (outside / "secret.txt").read_text() == "secret" and sorted(p.name for p in outside.iterdir()) == [
        "secret.txt"]
    assert "runs/r1/file-link" not in blobs.list("") and not (tmp_path / "out.bin").exists()
    assert blobs.get_bytes("inner/r1/ok.txt") == b"ok"  # a link that stays inside the root is fine
