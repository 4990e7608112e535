"""A hostile server (or anything between the client and it) cannot make the HTTP registry client write outside its
cache or load bytes the manifest does not vouch for: a real HTTP server on 127.0.0.1 answers with crafted
manifests."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.registry import load_model
from mloop.registry._http import HttpRegistryClient
from tests.conftest import free_port

PAYLOAD = b"not a model"


def _version(storage: str) -> dict[str, object]:
    return {"name": "eta", "version": 1, "run_id": None, "source": "x", "storage": storage, "flavor": "sklearn",
            "signature": None, "metrics": {}, "status": "ready", "description": "", "created": 0, "creator": "eve",
            "tags": {}, "aliases": [], "uri": "models:/eta/1"}


def _hostile(files: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    manifest = yaml.safe_dump({"format_version": 1, "flavor": "sklearn", "files": files}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            if self.path.startswith("/api/registry/resolve"):
                self._send(json.dumps(_version(f"models/{len(files)}")).encode(), "application/json")
            elif self.path.endswith("/files/mloop-model.yaml"):
                self._send(manifest, "application/octet-stream")
            else:
                self._send(PAYLOAD, "application/octet-stream")

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def hostile(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HttpRegistryClient]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _hostile(request.param))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield HttpRegistryClient(Settings.load(home=str(tmp_path / "home"), tracking_uri=url))
    server.shutdown()
    thread.join(10)


_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.mark.parametrize("hostile", [{"../../escaped.txt": _SHA}, {"/tmp/absolute.txt": _SHA}], indirect=True)
def test_a_file_name_outside_the_model_is_refused(hostile: HttpRegistryClient, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as refused:
        load_model("models:/eta/1", client=hostile)
    assert refused.value.field == "manifest.files"  # the manifest parser refuses it, before any download
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "home" / "escaped.txt").exists()
    assert not Path("/tmp/absolute.txt").exists()
    assert not list((tmp_path / "home" / "cache" / "models").iterdir())  # the temporary folder is gone too


@pytest.mark.parametrize("hostile", [{"model.pkl": "0" * 64}], indirect=True)
def test_bytes_the_manifest_does_not_vouch_for_are_refused(hostile: HttpRegistryClient, tmp_path: Path) -> None:
    from mloop.errors import DataIntegrityError

    with pytest.raises(DataIntegrityError):
        load_model("models:/eta/1", client=hostile)
    assert not list((tmp_path / "home" / "cache" / "models").iterdir())
