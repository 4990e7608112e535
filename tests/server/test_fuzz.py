"""The REST API fuzzed from its own OpenAPI spec: no 5xx, no hang, for any input schemathesis makes up."""

from __future__ import annotations

import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from mloop.config import Settings
from mloop.server import create_app
from tests.server.conftest import serve

# The schema is read from the app itself (its home a throwaway folder, never the checkout);
# the calls go to a real server on 127.0.0.1.
_schema_home = tempfile.mkdtemp(prefix="mloop-fuzz-schema-")
# (read in-process, where the Host header is "testserver": allowed for this app only)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings.load(home=_schema_home,
                                                                                  allowed_hosts="testserver")))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("fuzz")
    yield from serve(Settings.load(home=str(home)))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx(case, fuzz_server) -> None:  # type: ignore[no-untyped-def]
    response = case.call(base_url=fuzz_server.url, timeout=20)
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400 and response.status_code != 405:
        body = response.json()
        assert {"error_code", "message", "field"} <= set(body), body
