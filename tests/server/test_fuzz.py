"""The REST API fuzzed from its own OpenAPI document, with schemathesis's conformance checks on.

Every answer must be one the document declares (status, content type, body schema, headers), a
405 must list the path's methods in ``Allow``, and no input may cause a 5xx or a hang.
"""

from __future__ import annotations

import tempfile

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from mloop.config import Settings
from mloop.server import create_app
from tests.server.conftest import serve

# The document is read from the app itself (its home a throwaway folder, never the checkout) and carries
# no app, so that checks which send more requests (an undeclared method, a missing header) send them to
# the real server on 127.0.0.1 as well.
_schema_home = tempfile.mkdtemp(prefix="mloop-fuzz-schema-")
schema = schemathesis.openapi.from_dict(create_app(Settings.load(home=_schema_home)).openapi())

# Left off: positive_data_acceptance expects every body that matches the JSON Schema to succeed, but
# the server also validates what JSON Schema does not say (a models:/ URI's syntax, a selection rule's
# text, an alias that is not only digits, a feature reference that names a registered view) and answers
# those with a 422 that names the field; that is the right answer, so it is not a failure.
EXCLUDED = [positive_data_acceptance]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("fuzz")
    yield from serve(Settings.load(home=str(home)))


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, fuzz_server) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(base_url=fuzz_server.url, timeout=20, excluded_checks=EXCLUDED)


# What the fuzzer found, kept as plain examples so that they run the same way every time.
def test_a_405_lists_every_method_of_the_path(fuzz_server) -> None:  # type: ignore[no-untyped-def]
    for path, methods in [("/api/experiments", {"GET", "POST"}),
                          ("/api/registry/models/m/aliases/a", {"GET", "PUT", "DELETE"})]:
        answer = httpx.request("TRACE", fuzz_server.url + path, timeout=20)
        assert answer.status_code == 405
        assert methods <= {m.strip() for m in answer.headers["allow"].split(",")}, answer.headers
        assert answer.json()["error_code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(("path", "body"), [
    ("/api/runs/search", {"include_deleted": 0}),  # 0 is not false
    ("/api/gc", {"older_than_ms": False}),  # false is not 0 (and would purge every deleted run)
    ("/api/gc", {"older_than_ms": "5"}),
    ("/api/features/materialize", {"end": 0}),  # a number is not an ISO 8601 timestamp
    ("/api/registry/models/m/aliases/a", {"version": True}),
])
def test_body_values_of_the_wrong_json_type_are_refused(fuzz_server, path: str, body: dict) -> None:  # type: ignore[no-untyped-def]
    method = "PUT" if "aliases" in path else "POST"
    answer = httpx.request(method, fuzz_server.url + path, json=body, timeout=20)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == next(iter(body)), answer.text


def test_resolving_a_path_too_long_for_the_file_system_is_a_422(fuzz_server) -> None:  # type: ignore[no-untyped-def]
    answer = httpx.get(fuzz_server.url + "/api/registry/resolve", params={"uri": "x" * 5000}, timeout=20)
    assert answer.status_code == 422 and answer.json()["field"] == "uri", answer.text
