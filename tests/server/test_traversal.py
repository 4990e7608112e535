"""Path traversal through a real mloop server on 127.0.0.1: no route and no SDK call reads or writes outside the
artifact root, whatever form the path takes (plain, URL-encoded once or twice, absolute, backslashes, NUL, or a
symbolic link planted inside the root)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError
from tests.server.conftest import LiveServer, serve

SECRET = b"root:x:0:0:the secret nobody may read over HTTP\n"

# Path forms as they go on the wire, after '/artifacts/' or '/extra/' in a URL.
WIRE_FORMS = [
    "../../../../../../../../../../{abs}",
    "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{abs}",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f{abs}",
    "%252e%252e%252f%252e%252e%252f%252e%252e%252f%252e%252e%252f%252e%252e%252f%252e%252e%252f{abs}",
    "/{abs_root}",
    "%2f{abs}",
    "..%5c..%5c..%5c..%5c..%5c..%5c..%5c..%5c..%5c..%5c{abs}",
    "ok%00.txt",
    "a//b.txt",
]


@dataclass
class Target:
    """The live server, a run on it, and a secret file beside (outside) its artifact root."""

    server: LiveServer
    http: httpx.Client
    run_id: str
    secret: Path

    @property
    def root(self) -> Path:
        return Path(self.server.settings.artifact_root)

    def forms(self) -> list[str]:
        absolute = str(self.secret).lstrip("/")
        return [f.format(abs=absolute, abs_root=absolute) for f in WIRE_FORMS]

    def raw(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """A request whose path goes on the wire exactly as written (httpx would resolve '..' itself)."""
        where = urlsplit(self.server.url)
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers={"content-type": "application/octet-stream"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def upload(self, path: str, data: bytes, run_id: str | None = None) -> None:
        answer = self.http.put(f"/api/runs/{run_id or self.run_id}/artifacts/{path}", content=data)
        assert answer.status_code == 201, answer.text


def new_run(client: httpx.Client) -> str:
    experiment = client.post("/api/experiments", json={"name": f"exp-{len(client.get('/api/experiments').json())}"})
    return str(client.post("/api/runs", json={"experiment_id": experiment.json()["experiment_id"]}).json()["run_id"])


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    for server in serve(Settings.load(home=str(tmp_path / "server-home"))):
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield Target(server, client, new_run(client), secret)


def manifest(extra_files: object, **fields: object) -> bytes:
    """A model manifest as an uploader may write it: registering reads nothing but this file."""
    return yaml.safe_dump({"format_version": 1, "flavor": "sklearn", "files": {}, "extra_files": extra_files,
                           **fields}).encode()


def assert_refused(status: int, body: bytes) -> None:
    assert 400 <= status < 500, (status, body[:300])
    assert SECRET not in body


# ---------------------------------------------------------------- the reported exploit, end to end
def test_extra_files_cannot_read_a_file_outside_the_store(target: Target) -> None:
    """The report: a manifest naming '../../../../<file>' as an extra file, uploaded as run artifacts over REST,
    registered, then read back over REST. The register call must refuse the manifest, naming the field."""
    escape = "../" * 20 + str(target.secret).lstrip("/")
    target.upload("model/mloop-model.yaml", manifest(["notes.txt", escape]))
    target.upload("model/extra/notes.txt", b"the folder the '..' climb out of")
    registered = target.http.post("/api/registry/models/evil/versions", json={"source": f"runs:/{target.run_id}/model"})
    read = target.http.get(f"/api/registry/models/evil/versions/1/extra/{escape.replace('../', '%2e%2e/')}")
    assert_refused(read.status_code, read.content)  # before the fix: 200 and the secret file's bytes
    assert registered.status_code == 422, registered.text
    assert registered.json()["field"] == "manifest.extra_files" and escape in registered.json()["message"]


@pytest.mark.parametrize("field, bad", [
    ("manifest.files", {"files": {"../../x.pkl": "0" * 64}}),
    ("manifest.input_example", {"input_example": "/etc/passwd"}),
    ("manifest.flavor_options.file", {"flavor_options": {"file": "..%2f..%2fmodel.skops"}}),
    ("manifest.extra_files", {"extra_files": ["ok.txt", "a\\..\\..\\b"]}),
    ("manifest.extra_files", {"extra_files": "../x"}),
])
def test_every_file_name_in_a_manifest_is_checked_on_register(target: Target, field: str, bad: dict) -> None:
    target.upload("model/mloop-model.yaml", manifest(**{"extra_files": [], **bad}))
    registered = target.http.post("/api/registry/models/m/versions", json={"source": f"runs:/{target.run_id}/model"})
    assert registered.status_code == 422 and registered.json()["field"] == field, registered.text


def test_an_extra_file_behind_a_symlink_in_the_root_is_refused(target: Target) -> None:
    target.upload("model/mloop-model.yaml", manifest(["notes.txt", "leak/secret.txt"]))
    target.upload("model/extra/notes.txt", b"fine")
    assert target.http.post("/api/registry/models/m/versions",
                            json={"source": f"runs:/{target.run_id}/model"}).status_code == 201
    link = target.root / "runs" / target.run_id / "artifacts" / "model" / "extra" / "leak"
    link.symlink_to(target.secret.parent, target_is_directory=True)  # planted by whoever can write the folder
    assert target.http.get("/api/registry/models/m/versions/1/extra/notes.txt").content == b"fine"
    leaked = target.http.get("/api/registry/models/m/versions/1/extra/leak/secret.txt")
    assert_refused(leaked.status_code, leaked.content)
    assert leaked.json()["field"] == "path" and "inside the artifact root" in leaked.json()["message"]


# ---------------------------------------------------------------- every route that takes a path
def test_artifact_routes_refuse_every_form(target: Target) -> None:
    target.upload("notes/ok.txt", b"ok")
    base = f"/api/runs/{target.run_id}/artifacts"
    for form in target.forms():
        for method, body in (("PUT", b"planted"), ("GET", None), ("DELETE", None)):
            assert_refused(*target.raw(method, f"{base}/{form}", body))
        status, body = target.raw("GET", f"{base}?prefix={form}")
        assert status == 422 or (status == 200 and body == b"[]"), (form, status, body)
    assert target.secret.read_bytes() == SECRET and sorted(p.name for p in target.secret.parent.iterdir()) == [
        "secret.txt"]
    assert [a["path"] for a in target.http.get(base).json()] == ["notes/ok.txt"]


def test_an_artifact_upload_through_a_symlink_in_the_root_is_refused(target: Target) -> None:
    target.upload("notes/ok.txt", b"ok")
    (target.root / "runs" / target.run_id / "artifacts" / "out").symlink_to(target.secret.parent)
    status, body = target.raw("PUT", f"/api/runs/{target.run_id}/artifacts/out/secret.txt", b"overwritten")
    assert_refused(status, body)
    assert target.secret.read_bytes() == SECRET


def test_registry_extra_file_route_refuses_every_form(target: Target) -> None:
    target.upload("model/mloop-model.yaml", manifest(["notes.txt"]))
    target.upload("model/extra/notes.txt", b"fine")
    assert target.http.post("/api/registry/models/m/versions",
                            json={"source": f"runs:/{target.run_id}/model"}).status_code == 201
    for form in target.forms():
        assert_refused(*target.raw("GET", f"/api/registry/models/m/versions/1/extra/{form}"))


@pytest.mark.parametrize("path", ["../../{other}/artifacts/model", "model/../../../{other}/artifacts/model",
                                  "%2e%2e/%2e%2e/{other}/artifacts/model", "model/%252e%252e"])
def test_a_runs_source_cannot_climb_into_another_run(target: Target, path: str) -> None:
    other = new_run(target.http)
    target.upload("model/mloop-model.yaml", manifest([]), run_id=other)
    source = f"runs:/{target.run_id}/{path.format(other=other)}"
    registered = target.http.post("/api/registry/models/m/versions", json={"source": source})
    assert registered.status_code == 422 and registered.json()["field"] == "source", registered.text
    assert target.http.post("/api/registry/models/m/versions",
                            json={"source": f"runs:/{other}/model"}).status_code == 201  # its own URI works


def test_feature_routes_take_no_path(target: Target) -> None:
    """Feature sources come from the server's own definitions; the names a request carries are checked."""
    for form in target.forms()[:4]:
        assert_refused(*target.raw("POST", f"/api/features/push/{form}", b'{"rows": []}'))
        assert_refused(*target.raw("GET", f"/api/features/definitions?project={form}"))


# ---------------------------------------------------------------- the SDK, direct and through the server
@pytest.fixture(params=["direct", "server"])
def sdk_home(request: pytest.FixtureRequest, target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    if request.param == "server":
        monkeypatch.setenv("MLOOP_TRACKING_URI", target.server.url)
    else:
        monkeypatch.setenv("MLOOP_HOME", target.server.settings.home)
    return target


ESCAPES = ["../../outside.txt", "%2e%2e/%2e%2e/outside.txt", "%252e%252e%252foutside.txt", "/etc/passwd",
           "a\\..\\..\\b", "a\0b"]


def test_sdk_artifact_calls_refuse_every_form(sdk_home: Target, tmp_path: Path) -> None:
    from mloop.tracking import TrackingClient

    client = TrackingClient(Settings.load())
    source = tmp_path / "payload.txt"
    source.write_text("planted")
    run = client.start_run("sdk")
    for escape in ESCAPES:
        for call in (partial(run.log_artifact, source, escape), partial(run.log_text, "planted", escape),
                     partial(client.download_artifacts, run.run_id, escape, tmp_path / "got"),
                     partial(client.repo.delete_artifact, run.run_id, escape)):
            with pytest.raises(InvalidInputError):
                call()
    run.end()
    assert not (tmp_path / "got").exists() and sdk_home.secret.read_bytes() == SECRET


def test_sdk_registry_calls_refuse_every_form(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry SDK reads the stores directly (there is no HTTP registry client)."""
    import mloop
    from mloop.registry import RegistryClient

    monkeypatch.setenv("MLOOP_HOME", target.server.settings.home)
    target.upload("model/mloop-model.yaml", manifest(["notes.txt"]))
    target.upload("model/extra/notes.txt", b"fine")
    registry = RegistryClient(Settings.load())
    assert registry.register("m", f"runs:/{target.run_id}/model").version == 1
    for escape in ESCAPES:
        with pytest.raises(InvalidInputError):
            registry.extra_file("m", 1, escape)
        with pytest.raises(MloopError):
            registry.register("m", f"runs:/{target.run_id}/model/{escape}")
        with pytest.raises(MloopError):
            mloop.load_model(f"runs:/{target.run_id}/{escape}")
    assert registry.extra_file("m", 1, "notes.txt") == b"fine"


def test_a_version_tag_cannot_point_the_schema_reader_outside(target: Target,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The training schema's blob key lives in a version tag, which any client may set over REST."""
    from mloop.registry import RegistryClient
    from mloop.validation.attach import model_schema

    target.upload("model/mloop-model.yaml", manifest([]))
    assert target.http.post("/api/registry/models/m/versions",
                            json={"source": f"runs:/{target.run_id}/model"}).status_code == 201
    escape = "../" * 20 + str(target.secret).lstrip("/")
    assert target.http.patch("/api/registry/models/m/versions/1",
                             json={"tags": {"mloop.schema": escape}}).status_code == 200
    monkeypatch.setenv("MLOOP_HOME", target.server.settings.home)
    with pytest.raises(InvalidInputError) as raised:
        model_schema("m", 1, RegistryClient(Settings.load()))
    assert raised.value.field == "path"


def test_a_folder_on_the_servers_disk_is_no_source(target: Target, tmp_path: Path) -> None:
    """Over REST a model comes from a run's artifacts; a folder path would copy the server's own files."""
    folder = tmp_path / "server-side-model"
    folder.mkdir()
    (folder / "mloop-model.yaml").write_bytes(manifest([]))
    for source in (str(folder), f"file://{folder}", "/etc"):
        registered = target.http.post("/api/registry/models/m/versions", json={"source": source})
        assert registered.status_code == 422 and registered.json()["field"] == "source", registered.text
    assert not target.http.get("/api/registry/models").json() or \
        target.http.get("/api/registry/models/m/versions").status_code == 404
