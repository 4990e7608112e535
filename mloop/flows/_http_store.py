"""Flow artifacts through an mloop server (``/api/flows/cas/<sha256>``): the client needs no object-store credentials.

Uploads go in chunks at explicit offsets under an upload id, and the server appends a chunk only when it
arrives whole and at the offset it expects: a chunk whose connection broke is sent again (the server answers
how much it holds, so a chunk that did arrive is not appended twice), and the transfer goes on from the last
chunk stored instead of from the start. Downloads resume with an HTTP Range from the bytes already received.
Both ends check the sha256, so a transfer that went wrong never becomes an artifact.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import httpx

from mloop.errors import BackendError, DataIntegrityError
from mloop.flows.artifacts import ArtifactStore

CHUNK = 8 << 20  # bytes a request carries: what a broken upload sends again at most
_ATTEMPTS = 8  # broken downloads resumed, or uploads answered without progress, before giving up


class HttpArtifactStore(ArtifactStore):
    """The content-addressed store of flows, kept by ``mloop server`` (its artifact root) instead of here.

    >>> HttpArtifactStore("http://127.0.0.1:5000").base_url
    'http://127.0.0.1:5000'
    """

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None, chunk_bytes: int = CHUNK) -> None:
        from mloop.tracking._http import HttpTrackingRepository

        # no BlobStore on this side: put and get below are the only ways to the bytes
        self._api = HttpTrackingRepository(base_url, transport=transport)
        self.base_url = self._api.base_url
        self.chunk_bytes = chunk_bytes

    def put(self, data: bytes | memoryview) -> str:
        """Upload ``data`` unless the server has it already; returns its sha256."""
        view = memoryview(data).cast("B")
        sha = hashlib.sha256(view).hexdigest()
        size = view.nbytes
        upload = uuid.uuid4().hex
        offset = 0
        if size > self.chunk_bytes:  # a small one is sent at once: the server keeps one copy either way
            state = self._api.call("GET", f"/flows/cas/{sha}/uploads/{upload}")
            if state["stored"]:
                return sha
        stalled = 0
        while True:
            end = min(offset + self.chunk_bytes, size)
            # retried as a whole when its connection breaks: the server appends only a chunk that arrived whole
            # and at its offset, and otherwise answers where it stands
            state = self._api.call("PUT", f"/flows/cas/{sha}", content=bytes(view[offset:end]), retry=True,
                                    params={"upload": upload, "offset": offset, "size": size})
            if state["stored"]:
                return sha
            received = int(state["received"])
            stalled = stalled + 1 if received <= offset else 0
            if stalled > _ATTEMPTS:  # e.g. servers behind a balancer that do not share their staging folder
                raise BackendError(f"Uploading artifact {sha[:12]} to {self.base_url} makes no progress: the "
                                   f"server keeps answering that it holds {received} of {size} bytes.")
            offset = received

    def get(self, sha256: str) -> bytes:
        """The bytes of ``sha256``, resuming a broken download where it stopped."""
        from mloop.tracking._http import _raise

        received = bytearray()
        failures = 0
        while True:
            headers = {"Range": f"bytes={len(received)}-"} if received else {}
            try:
                with self._api.http.stream("GET", f"/flows/cas/{sha256}", headers=headers) as response:
                    if response.status_code >= 400:
                        response.read()
                        _raise(response)
                    if received and response.status_code != 206:  # the range was not honoured: start again
                        received.clear()
                    for chunk in response.iter_bytes():
                        received += chunk
                break
            except httpx.TransportError as exc:
                failures += 1
                if failures > _ATTEMPTS:
                    raise BackendError(f"Downloading artifact {sha256[:12]} from {self.base_url} failed "
                                       f"{failures} times: {exc}") from exc
                time.sleep(min(0.1 * 2 ** failures, 2.0))
        actual = hashlib.sha256(received).hexdigest()
        if actual != sha256:
            raise DataIntegrityError(path=f"flows/cas/{sha256}", expected=sha256, actual=actual)
        return bytes(received)

    def __reduce__(self) -> tuple[Any, ...]:  # travels to a Ray worker as its URL (the token comes from there)
        return HttpArtifactStore, (self.base_url, None, self.chunk_bytes)
