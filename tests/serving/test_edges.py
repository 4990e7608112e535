"""The edges of ``mloop serve`` over a real server on 127.0.0.1: what a web page, a rebound DNS name, a huge body
or a failing handler could do before the edge middleware, and what ``mloop serve`` prints about its store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from mloop.config import Settings
from mloop.serving import EndpointConfig, ServeConfig, create_serving_app
from tests.conftest import free_port
from tests.serving.conftest import ROW, Served, running, save_trip_model, serve_process, wait_ready

LIMIT = 512 * 1024


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_trip_model(tmp_path_factory.mktemp("edges") / "trips", slope=2.0)


@pytest.fixture(scope="module")
def served(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = Settings.load(home=str(tmp_path_factory.mktemp("edges-home")), max_request_bytes=LIMIT)
    with running(ServeConfig(endpoints=(EndpointConfig(name="trips", uri=str(model), log=True),)), settings) as s:
        yield s


def _is_error(response: httpx.Response, status: int, code: str, field: str | None) -> bool:
    body = response.json()
    return response.status_code == status and body["error_code"] == code and body["field"] == field


def test_text_plain_predict_and_feedback_are_refused(served: Served) -> None:
    # fetch(url, {method: "POST", mode: "no-cors", body: JSON.stringify(...)}) sends text/plain, no preflight
    predict = httpx.post(served.url + "/predict", content=orjson.dumps([ROW]),
                         headers={"content-type": "text/plain;charset=UTF-8"})
    assert _is_error(predict, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type")
    pid = served.post("/predict", [ROW]).json()["ids"][0]
    feedback = httpx.post(served.url + "/feedback", content=orjson.dumps({"id": pid, "label": 1.0}),
                          headers={"content-type": "text/plain"})
    assert _is_error(feedback, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type")
    assert served.post("/feedback", {"id": pid, "label": 1.0}).json() == {"accepted": 1}


def test_a_cross_site_form_is_refused(served: Served) -> None:
    form = httpx.post(served.url + "/predict", content=b"hour=8&km=3.5&weather=rain", headers={
        "content-type": "application/x-www-form-urlencoded", "origin": "http://evil.example"})
    assert _is_error(form, 403, "CROSS_ORIGIN", "Origin")
    assert "access-control-allow-origin" not in form.headers


def test_invocations_still_take_csv_and_json(served: Served) -> None:
    csv = b"hour,km,weather\n8,3.5,rain\n"
    assert httpx.post(served.url + "/invocations", content=csv, headers={"content-type": "text/csv"}).status_code \
        == 200
    assert served.post("/invocations", {"dataframe_records": [ROW]}).status_code == 200
    plain = httpx.post(served.url + "/invocations", content=csv, headers={"content-type": "text/plain"})
    assert _is_error(plain, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type")
    assert "text/csv" in plain.json()["message"]


def test_a_rebound_host_is_refused(served: Served) -> None:
    for path in ("/models", "/schema"):
        assert _is_error(httpx.get(served.url + path, headers={"host": "evil.example"}), 421, "HOST_NOT_ALLOWED",
                         "Host")
    refused = httpx.post(served.url + "/predict", json=[ROW], headers={"host": "evil.example:8080"})
    assert refused.status_code == 421
    assert httpx.get(served.url + "/models", headers={"host": "localhost"}).status_code == 200


def test_oversized_bodies_are_refused_with_and_without_content_length(served: Served) -> None:
    rows = orjson.dumps([ROW] * (2 * LIMIT // len(orjson.dumps(ROW))))
    assert len(rows) > LIMIT
    sized = httpx.post(served.url + "/predict", content=rows, headers={"content-type": "application/json"})
    assert _is_error(sized, 413, "REQUEST_TOO_LARGE", "body")

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(rows), 32768):
            yield rows[i:i + 32768]

    try:
        streamed = httpx.post(served.url + "/predict", content=chunks(), headers={"content-type": "application/json"})
    except httpx.TransportError:  # closed while the client still wrote: refused all the same, never answered
        streamed = None
    if streamed is not None:
        assert "content-length" not in streamed.request.headers
        assert _is_error(streamed, 413, "REQUEST_TOO_LARGE", "body")
    assert served.post("/predict", [ROW]).status_code == 200


def test_a_500_keeps_the_connection(model: Path, tmp_path: Path) -> None:
    app = create_serving_app(ServeConfig(endpoints=(EndpointConfig(name="trips", uri=str(model), log=False),)),
                             Settings.load(home=str(tmp_path / "h")))

    async def boom(request: Request) -> Response:
        raise RuntimeError("secret internals: /srv/models/key=abc")

    app.add_route("/boom", boom, methods=["GET"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        with httpx.Client(base_url=url, timeout=30) as client:
            first = client.get("/boom")
            assert _is_error(first, 500, "INTERNAL", None) and "secret internals" not in first.text
            second = client.post("/predict", json=[ROW])
            assert second.status_code == 200

            def port_of(r: httpx.Response) -> int:
                return int(r.extensions["network_stream"].get_extra_info("client_addr")[1])

            assert port_of(second) == port_of(first)
    finally:
        server.should_exit = True
        thread.join(30)


def test_serve_allowed_hosts_option(model: Path) -> None:
    with serve_process([str(model), "--allowed-hosts", "models.internal", "--no-log", "--reload-seconds", "0"]) as (
            url, _proc):
        assert httpx.get(url + "/models", headers={"host": "models.internal"}).status_code == 200
        assert httpx.get(url + "/models", headers={"host": "evil.example"}).status_code == 421


def test_serve_errors_hide_the_database_password(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mloop", "serve", "models:/trips@champion", "--port",
                           str(free_port()), "--db-url", "postgresql+psycopg://ml:hunter2@127.0.0.1:1/mloop"],
                          env={**os.environ, "MLOOP_HOME": str(tmp_path / "h")}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "hunter2" not in done.stdout + done.stderr and "ml:***@" in done.stderr.replace("\n", "")
    assert "bug in mloop" not in done.stderr


class _Leaky:
    """A model that fails with its internals in the message, as a real one may (paths, keys, values)."""

    def predict(self, frame: object) -> object:
        raise RuntimeError("cannot read /srv/secret/features.db with key=abc123")


def test_a_failing_model_answers_without_its_internals(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from mloop.registry import save_model

    folder = tmp_path / "leaky"
    save_model(_Leaky(), folder, flavor="python_function")
    config = ServeConfig(endpoints=(EndpointConfig(name="leaky", uri=str(folder), log=False),), trusted=True)
    with running(config, Settings.load(home=str(tmp_path / "h"))) as s, \
            httpx.Client(base_url=s.url, timeout=30) as client:
        answer = client.post("/predict", json=[ROW])
        assert _is_error(answer, 503, "MODEL_UNAVAILABLE", None), answer.text
        assert "secret" not in answer.text and "abc123" not in answer.text and "RuntimeError" in answer.text
        error_id = answer.json()["message"].rsplit(" ", 1)[-1]
        assert f"error {error_id}" in caplog.text  # the details are in the log, under the id the client got
        assert client.get("/health/live").status_code == 200
