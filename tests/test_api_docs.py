"""/docs and /redoc of both servers work offline: every script, style and icon comes from the server itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from mloop.config import Settings
from mloop.serving import EndpointConfig, ServeConfig
from tests.browser import browse, chromium
from tests.server.conftest import serve
from tests.serving.conftest import running, save_trip_model

# src= and href= of the page, and url(...) inside a stylesheet
_REFERENCE = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)["']?\s*\)""")


def references(text: str) -> list[str]:
    return [a or b for a, b in _REFERENCE.findall(text)]


def assert_local(base: str, page: str) -> set[str]:
    """Fetch ``page`` and every asset it names; each must be on ``base``'s host and answer 200 with content."""
    host = urlsplit(base).netloc
    answer = httpx.get(base + page, timeout=30)
    assert answer.status_code == 200, answer.text
    assets = {urljoin(base + page, ref) for ref in references(answer.text) if not ref.startswith("data:")}
    assert assets, answer.text
    for url in assets:
        assert urlsplit(url).netloc == host, f"{page} loads {url} from another host"
        asset = httpx.get(url, timeout=30)
        assert asset.status_code == 200 and asset.content, url
        if url.endswith(".css"):  # a stylesheet may pull fonts or images from elsewhere
            remote = [r for r in references(asset.text) if re.match(r"(?:https?:)?//", r)]
            assert not remote, f"{url} refers to {remote}"
    return assets


def check_docs(base: str) -> None:
    swagger = assert_local(base, "/docs")
    assert {base + "/docs/static/swagger-ui-bundle.js", base + "/docs/static/swagger-ui.css",
            base + "/docs/static/favicon.png"} <= swagger
    assert base + "/docs/static/redoc.standalone.js" in assert_local(base, "/redoc")
    for page in ("/docs", "/redoc"):
        assert "/openapi.json" in httpx.get(base + page, timeout=30).text
    assert httpx.get(base + "/openapi.json", timeout=30).json()["paths"]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("docs-server")
    for live in serve(Settings.load(home=str(home))):
        yield live.url


@pytest.fixture(scope="module")
def serving_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("docs-serving")
    model = save_trip_model(Path(home) / "model", slope=2.0)
    with running(ServeConfig(endpoints=[EndpointConfig(name="trips", uri=str(model))]),
                 Settings.load(home=str(home))) as served:
        yield served.url


def test_mloop_server_docs_load_nothing_from_another_host(api_server: str) -> None:
    check_docs(api_server)


def test_mloop_serve_docs_load_nothing_from_another_host(serving_server: str) -> None:
    check_docs(serving_server)


def test_docs_assets_outside_the_static_folder_are_refused(api_server: str, serving_server: str) -> None:
    for base in (api_server, serving_server):
        for probe in ("/docs/static/%2e%2e/__init__.py", "/docs/static/nope.js"):
            assert httpx.get(base + probe, timeout=30).status_code == 404, (base, probe)



@pytest.mark.parametrize("server", ["api_server", "serving_server"])
def test_every_operation_declares_the_errors_of_the_edges(server: str, request: pytest.FixtureRequest) -> None:
    """400 anywhere, 413 and 415 with a body, 404 with a path parameter: all with the JSON error body."""
    spec = httpx.get(request.getfixturevalue(server) + "/openapi.json", timeout=30).json()
    assert {"error_code", "message", "field"} <= set(spec["components"]["schemas"]["Error"]["properties"])
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            expected = {"400"} | ({"413", "415", "422"} if "requestBody" in operation else set()) | \
                ({"404"} if "{" in path else set())
            responses = operation["responses"]
            assert expected <= set(responses), (method, path, sorted(responses))
            for status in (s for s in responses if s.startswith("4")):
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path, declared)

# ---------------------------------------------------------------- in a real browser
@pytest.mark.parametrize("server", ["api_server", "serving_server"])
def test_docs_render_every_operation_in_chromium(server: str, request: pytest.FixtureRequest) -> None:
    chromium()
    base = request.getfixturevalue(server)
    spec = httpx.get(base + "/openapi.json", timeout=30).json()
    operations = sum(len(item) for item in spec["paths"].values())
    rendered, answered, failed = browse(base + "/docs", ".opblock")
    assert rendered == operations
    # an operation's section id is tag/<tag>/operation/<id>, or /paths/<path>/<method> without tags
    sections, redoc_answered, redoc_failed = browse(
        base + "/redoc", "[data-section-id*='/operation/'], [data-section-id^='/paths/']")
    assert sections == operations
    host = urlsplit(base).netloc
    remote = [u for u in answered + redoc_answered if urlsplit(u).scheme != "blob" and urlsplit(u).netloc != host]
    assert not remote, f"the docs loaded {remote}"
    # Redoc's sidebar asks its vendor's CDN for a logo; the page's Content-Security-Policy refuses it
    assert all(urlsplit(u).netloc != host for u in failed + redoc_failed), failed + redoc_failed
