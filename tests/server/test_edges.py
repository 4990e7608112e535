"""The edges of ``mloop server``, probed over a real HTTP server on 127.0.0.1 the way an attacker or a browser would.

Each test carries an exploit or failure that the server let through before the edge middleware: a cross-site form
that deleted an experiment, DNS rebinding, bodies of any size, a 500 that reset the kept-alive connection, webhooks
to this machine, secrets in banners, errors and API outputs, and "a bug in mloop" for a damaged database file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn

from mloop.config import Settings
from mloop.server import create_app
from tests.conftest import POSTGRES_URL, free_port
from tests.server.conftest import LiveServer, serve

LIMIT = 1024 * 1024  # a small body limit keeps the oversized requests quick


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from serve(Settings.load(home=str(tmp_path / "server-home"), max_request_bytes=LIMIT))


def _experiment(api: httpx.Client, name: str = "eta") -> str:
    created = api.post("/api/experiments", json={"name": name})
    assert created.status_code == 201, created.text
    return str(created.json()["experiment_id"])


def _is_error(response: httpx.Response, status: int, code: str, field: str | None) -> bool:
    body = response.json()
    return response.status_code == status and body["error_code"] == code and body["field"] == field \
        and bool(body["message"])


# ------------------------------------------------------------------ cross-site requests
def test_a_cross_site_html_form_cannot_delete_an_experiment(api: httpx.Client) -> None:
    experiment = _experiment(api)
    # what <form method=post action=".../delete"> on another site sends: a form body and the page's origin
    form = api.post(f"/api/experiments/{experiment}/delete", content=b"",
                    headers={"content-type": "application/x-www-form-urlencoded", "origin": "http://evil.example"})
    assert _is_error(form, 403, "CROSS_ORIGIN", "Origin")
    # a browser that sends no Origin: the form body alone is refused
    no_origin = api.post(f"/api/experiments/{experiment}/delete", content=b"x=1",
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert _is_error(no_origin, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type")
    # fetch(url, {method: "POST", mode: "no-cors"}) sends no body and no content type, but its origin
    fetched = api.post(f"/api/experiments/{experiment}/delete", headers={"origin": "https://evil.example"})
    assert _is_error(fetched, 403, "CROSS_ORIGIN", "Origin")
    assert api.get(f"/api/experiments/{experiment}").json()["lifecycle_stage"] == "active"
    # the SDK (no origin, no body) and a page of this very server (same origin) still can
    same_origin = api.post(f"/api/experiments/{experiment}/delete", headers={"origin": str(api.base_url)})
    assert same_origin.status_code == 200
    assert api.post(f"/api/experiments/{experiment}/restore").status_code == 200


def test_text_plain_json_is_refused(api: httpx.Client) -> None:
    # a text/plain body needs no CORS preflight: JSON endpoints must not read it as JSON
    sent = api.post("/api/experiments", content=orjson.dumps({"name": "planted"}),
                    headers={"content-type": "text/plain"})
    assert _is_error(sent, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type")
    assert "application/json" in sent.json()["message"]
    assert api.post("/api/experiments", content=b'{"name": "typed"}',
                    headers={"content-type": "application/vnd.mloop+json; charset=utf-8"}).status_code == 201
    assert [e["name"] for e in api.get("/api/experiments").json()] == ["typed"]


def test_cors_stays_closed(api: httpx.Client) -> None:
    preflight = api.options("/api/experiments", headers={"origin": "http://evil.example",
                                                         "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in api.get("/api/experiments",
                                                        headers={"origin": "http://evil.example"}).headers


def test_configured_origins_get_cors(tmp_path: Path) -> None:
    settings = Settings.load(home=str(tmp_path / "h"), allowed_origins="https://ui.example")
    for live in serve(settings):
        preflight = httpx.options(live.url + "/api/experiments", headers={
            "origin": "https://ui.example", "access-control-request-method": "POST"})
        assert preflight.headers["access-control-allow-origin"] == "https://ui.example"
        created = httpx.post(live.url + "/api/experiments", json={"name": "x"}, headers={"origin": "https://ui.example"})
        assert created.status_code == 201
        assert httpx.post(live.url + "/api/experiments", json={"name": "y"},
                          headers={"origin": "https://other.example"}).status_code == 403


def test_dns_rebinding_host_is_refused(server: LiveServer, api: httpx.Client) -> None:
    # a page on evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example
    rebound = api.get("/api/experiments", headers={"host": "evil.example"})
    assert _is_error(rebound, 421, "HOST_NOT_ALLOWED", "Host")
    assert api.post("/api/experiments", json={"name": "x"}, headers={"host": "evil.example:80"}).status_code == 421
    port = server.url.rsplit(":", 1)[1]
    for host in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST."):
        assert api.get("/health", headers={"host": host}).status_code == 200, host


def test_allowed_hosts_are_configurable(tmp_path: Path) -> None:
    for live in serve(Settings.load(home=str(tmp_path / "a"), allowed_hosts="mloop.internal,.corp.example")):
        for host, status in (("mloop.internal:5000", 200), ("eu.corp.example", 200), ("evil.example", 421)):
            assert httpx.get(live.url + "/health", headers={"host": host}).status_code == status, host
    for live in serve(Settings.load(home=str(tmp_path / "b"), allowed_hosts="*")):
        assert httpx.get(live.url + "/health", headers={"host": "anything.example"}).status_code == 200


# ------------------------------------------------------------------ request size
def _metrics_body(size: int) -> bytes:
    n = size // 20
    return orjson.dumps({"run_ids": ["r"] * n, "keys": ["k"] * n, "values": [1.0] * n, "timestamps": [0] * n,
                         "steps": [0] * n})


def test_an_oversized_body_is_refused_up_front(api: httpx.Client) -> None:
    body = _metrics_body(3 * LIMIT)
    assert len(body) > LIMIT
    refused = api.post("/api/metrics/batch", content=body, headers={"content-type": "application/json"})
    assert _is_error(refused, 413, "REQUEST_TOO_LARGE", "body")
    assert f"{LIMIT:,}" in refused.json()["message"] and "MLOOP_MAX_REQUEST_BYTES" in refused.json()["message"]
    assert api.get("/health").status_code == 200


def test_an_oversized_chunked_body_is_cut_off_while_it_streams(api: httpx.Client) -> None:
    chunk = b" " * 65536

    def body() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield b'{"name": "chunked"'
        for _ in range(64):  # 4 MB of whitespace, valid JSON far past the limit
            yield chunk
        yield b"}"

    try:
        refused = api.post("/api/experiments", content=body(), headers={"content-type": "application/json"})
    except httpx.TransportError:  # the server may close before the client finishes writing; never a 2xx
        refused = None
    if refused is not None:
        assert "content-length" not in refused.request.headers
        assert _is_error(refused, 413, "REQUEST_TOO_LARGE", "body")
    assert api.get("/api/experiments").json() == []  # a server that read it all would have created "chunked"


def test_artifact_uploads_are_not_held_to_the_json_limit(api: httpx.Client) -> None:
    experiment = _experiment(api)
    run = api.post("/api/runs", json={"experiment_id": experiment}).json()["run_id"]
    data = os.urandom(2 * LIMIT)
    put = api.put(f"/api/runs/{run}/artifacts/weights.bin", content=data,
                  headers={"content-type": "application/octet-stream"})
    assert put.status_code == 201, put.text
    assert api.get(f"/api/runs/{run}/artifacts/weights.bin").content == data


# ------------------------------------------------------------------ a 500 keeps the connection
@pytest.fixture
def failing_server(tmp_path: Path) -> Iterator[str]:
    """The real app with one extra route that fails the way a bug would (an exception no handler knows)."""
    app = create_app(Settings.load(home=str(tmp_path / "h")))

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("connection to postgresql://ml:hunter2@db/prod lost in /srv/mloop/internal.py")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _local_port(response: httpx.Response) -> int:
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_a_500_is_json_and_keeps_the_connection(failing_server: str, caplog: pytest.LogCaptureFixture) -> None:
    with httpx.Client(base_url=failing_server, timeout=30) as client:
        first = client.get("/api/boom")
        assert _is_error(first, 500, "INTERNAL", None)
        error_id = first.json()["id"]
        assert "hunter2" not in first.text and "/srv/mloop" not in first.text and error_id in first.text
        second = client.get("/api/experiments")
        assert second.status_code == 200
        assert _local_port(second) == _local_port(first)  # the same kept-alive connection
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)  # the traceback is logged


# ------------------------------------------------------------------ webhooks (SSRF)
@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/", "http://169.254.169.254/latest/meta-data/iam/",
                                 "http://localhost:{port}/", "http://[fd00:ec2::254]/latest/",
                                 "http://[2002:7f00:1::]:{port}/", "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/"])
def test_webhooks_cannot_target_this_machine_or_metadata(server: LiveServer, api: httpx.Client, url: str) -> None:
    port = server.url.rsplit(":", 1)[1]
    refused = api.post("/api/registry/webhooks", json={"url": url.format(port=port), "secret": "0123456789abcdef"})
    assert _is_error(refused, 422, "INVALID_INPUT", "url")
    assert "webhook_allow_hosts" in refused.json()["message"]
    assert api.get("/api/registry/webhooks").json() == []


def test_webhook_allow_list_lets_a_chosen_host_through(tmp_path: Path) -> None:
    for live in serve(Settings.load(home=str(tmp_path / "h"), webhook_allow_hosts="127.0.0.1")):
        added = httpx.post(live.url + "/api/registry/webhooks",
                           json={"url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef"})
        assert added.status_code == 201, added.text


# ------------------------------------------------------------------ secrets and the user's own errors
def _mloop(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mloop", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


def test_the_banner_hides_the_database_password(postgres_url: str, tmp_path: Path) -> None:
    # the test PostgreSQL trusts every login: the password is never checked, and must never be printed
    with_password = postgres_url.replace("postgres@", "postgres:hunter2@", 1)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "server", "--port", str(port)],
                            env={**os.environ, "MLOOP_DB_URL": with_password, "MLOOP_HOME": str(tmp_path / "h")},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline() if proc.stdout else ""
        assert "mloop server on http://127.0.0.1" in banner, banner
        assert "hunter2" not in banner and "postgres:***@" in banner
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "hunter2" not in err


def test_a_refused_database_login_is_the_users_error_without_the_password(tmp_path: Path) -> None:
    url = POSTGRES_URL.replace("postgres@", "nobody_here:hunter2@", 1)
    for unreachable in (url, "postgresql+psycopg://ml:hunter2@127.0.0.1:1/mloop"):
        done = _mloop("experiments", "list", env={"MLOOP_DB_URL": unreachable})
        assert done.returncode == 1, done.stderr
        assert "hunter2" not in done.stderr + done.stdout
        assert "bug in mloop" not in done.stderr and "MLOOP_DB_URL" in done.stderr, done.stderr


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_sqlite_file_is_the_users_error(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "meta.db"
    env = {"MLOOP_DB_URL": f"sqlite:///{db}"}
    assert _mloop("experiments", "create", "eta", env=env).returncode == 0
    if damage == "truncated":
        with db.open("r+b") as f:
            f.truncate(db.stat().st_size // 3)
    else:
        db.write_bytes(os.urandom(4096))
    done = _mloop("experiments", "list", env=env)
    assert done.returncode == 1
    assert "bug in mloop" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert str(db) in done.stderr.replace("\n", "") and "backup" in done.stderr


def test_object_store_keys_never_reach_the_api(tmp_path: Path) -> None:
    root = "s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG@bucket/mloop?token=sessiontoken123"
    for live in serve(Settings.load(home=str(tmp_path / "h"), artifact_root=root)):
        experiment = httpx.post(live.url + "/api/experiments", json={"name": "eta"}).json()["experiment_id"]
        run = httpx.post(live.url + "/api/runs", json={"experiment_id": experiment}).json()
        for text in (str(run), httpx.get(f"{live.url}/api/runs/{run['run_id']}").text):
            assert "AKIAIOSFODNN7EXAMPLE" not in text and "wJalr" not in text and "sessiontoken123" not in text
        assert run["artifact_uri"].startswith("s3://***@bucket/mloop")


def test_the_bound_host_is_announced_and_accepted(tmp_path: Path) -> None:
    # `mloop server --host 0.0.0.0`: reachable by this machine's own name, which the allow list then holds
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "server", "--host", "0.0.0.0", "--port", str(port),
                             "--allowed-hosts", "mloop.internal", "--insecure-no-auth"],
                            env={**os.environ, "MLOOP_HOME": str(tmp_path / "h")}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert "mloop server on" in (proc.stdout.readline() if proc.stdout else "")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url + "/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        for host, status in (("mloop.internal", 200), (socket.gethostname(), 200), ("evil.example", 421)):
            assert httpx.get(url + "/health", headers={"host": host}).status_code == status, host
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "mloop.internal" in err and "--allowed-hosts" in err and "WITHOUT AUTHENTICATION" in err


# ------------------------------------------------------------------ the settings and the redaction rule
def test_edge_settings_come_from_the_environment_and_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.errors import InvalidInputError

    monkeypatch.setenv("MLOOP_MAX_REQUEST_BYTES", "1000")
    monkeypatch.setenv("MLOOP_ALLOWED_HOSTS", "a.example, b.example,")
    monkeypatch.setenv("MLOOP_WEBHOOK_ALLOW_HOSTS", "10.0.0.0/8")
    loaded = Settings.load()
    assert loaded.max_request_bytes == 1000 and loaded.allowed_hosts == ("a.example", "b.example")
    assert loaded.webhook_allow_hosts == ("10.0.0.0/8",) and loaded.allowed_origins == ()
    for bad in ("64MB", "0", "-1"):
        with pytest.raises(InvalidInputError, match="max_request_bytes") as raised:
            Settings.load(max_request_bytes=bad)
        assert raised.value.field == "max_request_bytes"
    with pytest.raises(InvalidInputError, match="allowed_hosts"):
        Settings.load(allowed_hosts=[1, 2])


@pytest.mark.parametrize(("text", "hidden", "shown"), [
    ("postgresql+psycopg://ml:pa%40ss@db:5432/mloop", "pa%40ss", "postgresql+psycopg://ml:***@db:5432/mloop"),
    ("s3://AKIAIOSFODNN7EXAMPLE:wJalr/K7MDENG@bucket/x", "AKIA", "s3://***@bucket/x"),
    ("failed: https://h/x?X-Amz-Signature=abc&region=eu", "abc", "X-Amz-Signature=***&region=eu"),
    ("https://h/x?api_key=k1&access_token=t1", "k1", "access_token=***"),
    ("see http://example.com/a:b@c and sqlite:////tmp/x.db", "***", "http://example.com/a:b@c"),
    # SQLAlchemy connects with these passwords as written; the banner printed them whole
    ("store postgresql://ml:Xq\"7<k>9@db:5432/mloop", "Xq", "postgresql://ml:***@db:5432/mloop"),
    ("store postgresql://ml:it's-Xq@db/mloop", "Xq", "postgresql://ml:***@db/mloop"),
])
def test_redaction_hides_secrets_and_nothing_else(text: str, hidden: str, shown: str) -> None:
    from mloop._util.redact import redact
    from mloop.errors import BackendError

    assert hidden not in redact(text) and shown in redact(text)
    assert hidden not in BackendError(f"cannot reach {text}").message
