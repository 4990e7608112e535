"""Blobs in a local folder; each put writes a temporary file and renames it into place."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError, NotFoundError
from mloop.store.blob.base import CHUNK, BlobInfo, safe_key

# Above this size a content-addressed put hashes in a second thread while the bytes go to disk (hashlib and file
# writes both release the GIL): a 23 MB DataFrame artifact saves ~15 ms. Below it, hashing first is cheaper and
# skips the write of content that is already stored.
OVERLAP_MIN = 1 << 20


class LocalBlobStore:
    """The default artifact store: a folder on this machine."""

    def __init__(self, root: str) -> None:
        self.root = str(Path(root).expanduser().absolute())
        # Resolved once: if the root itself is later swapped for a link, every key is refused (fails closed).
        self._real_root = os.path.realpath(self.root)

    def _path(self, key: str, *, root_ok: bool = False) -> Path:
        """The file of ``key``: the one place a key becomes a path, so it is checked and confined here."""
        key = safe_key(key, root_ok=root_ok)
        path = Path(self.root, *key.split("/")) if key else Path(self.root)
        if not self._inside(path):
            raise InvalidInputError(field="path", value=key,
                                    expected="a path that stays inside the artifact root (a symbolic link in the "
                                             "store leads out of it)")
        return path

    def _inside(self, path: Path) -> bool:
        """Whether ``path`` with every symbolic link resolved is still under the root (checked on each use, since
        links can appear after the store opens)."""
        return os.path.commonpath([self._real_root, os.path.realpath(path)]) == self._real_root

    def local_path(self, key: str) -> Path:
        """The confined local path of ``key`` (a file or a folder), for readers that need a real folder."""
        return self._path(key)

    def put_file(self, key: str, source: str | Path) -> BlobInfo:
        with open(source, "rb") as src:
            return self._write(key, iter(lambda: src.read(CHUNK), b""))

    def put_bytes(self, key: str, data: bytes) -> BlobInfo:
        return self._write(key, [data])

    def put_content(self, data: bytes | memoryview, key_of: Callable[[str], str]) -> BlobInfo:
        view = memoryview(data).cast("B")
        if view.nbytes < OVERLAP_MIN:
            sha = hashlib.sha256(view).hexdigest()
            key = key_of(sha)
            return BlobInfo(key, view.nbytes, sha) if self.exists(key) else self._write(key, [view], sha)
        digest = hashlib.sha256()
        hasher = threading.Thread(target=digest.update, args=(view,), name="mloop-sha256")
        hasher.start()
        try:
            tmp, size = self._spill(Path(self.root), [view])
        finally:
            hasher.join()
        sha = digest.hexdigest()
        key = key_of(sha)
        if self.exists(key):
            Path(tmp).unlink(missing_ok=True)
        else:
            self._path(key).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, self._path(key))
        return BlobInfo(key, size, sha)

    def _write(self, key: str, chunks: Iterable[bytes | memoryview], known_sha256: str | None = None) -> BlobInfo:
        target = self._path(key)
        digest = None if known_sha256 else hashlib.sha256()
        tmp = None
        try:
            tmp, size = self._spill(target.parent, chunks, digest)  # creates the folder
            os.replace(tmp, target)
        except OSError as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            # a key through a stored file ('a.txt/b'), onto a folder, or with a name past the file system's limit
            if isinstance(exc, FileExistsError | NotADirectoryError | IsADirectoryError) \
                    or exc.errno == errno.ENAMETOOLONG:
                raise InvalidInputError(f"Cannot store '{key}': {exc.strerror}.", field="path", value=key,
                                        expected="a path whose folders are not files, that is not a folder, "
                                                 "with names of at most 255 bytes") from None
            raise
        return BlobInfo(key, size, known_sha256 or digest.hexdigest())  # type: ignore[union-attr]

    @staticmethod
    def _spill(folder: Path, chunks: Iterable[bytes | memoryview], digest: Any = None) -> tuple[str, int]:
        """Write ``chunks`` to a durable temporary file in ``folder`` (same filesystem, so a rename publishes it)."""
        folder.mkdir(parents=True, exist_ok=True)
        size = 0
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return tmp, size

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFoundError(f"No artifact at '{key}' under {self.root}.", field="path") from exc

    def get_file(self, key: str, dest: str | Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise NotFoundError(f"No artifact at '{key}' under {self.root}.", field="path")
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix, root_ok=True)
        if base.is_file():
            return [base.relative_to(self.root).as_posix()]
        if not base.is_dir():
            return []
        root = Path(self.root)
        return sorted(
            p.relative_to(root).as_posix() for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-") and (not p.is_symlink() or self._inside(p))
        )

    def delete(self, prefix: str) -> int:
        target = self._path(prefix)
        if target.is_file():
            target.unlink()
            return 1
        if target.is_dir():
            count = sum(1 for p in target.rglob("*") if p.is_file())
            shutil.rmtree(target)
            return count
        return 0

    def url(self, key: str) -> str:
        return str(self._path(key))
