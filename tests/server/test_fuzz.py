"""The REST API fuzzed from its own OpenAPI document, with schemathesis's conformance checks on.

Every answer must be one the document declares (status, content type, body schema, headers), a
405 must list the path's methods in ``Allow``, no input may cause a 5xx or a hang, input the document
calls invalid is refused and input it calls valid is accepted (positive_data_acceptance).
"""

from __future__ import annotations

import os
import tempfile

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from mloop.config import Settings
from mloop.server import create_app
from tests.server.conftest import serve

# positive_data_acceptance: every request that matches the document must succeed (or find nothing: 404, or
# meet stored state: 409). The document says what the checks say about names, keys, aliases, ids, URIs and
# text (the same regex and limits). These operations also take input that only a parser or the server's
# state can judge, so for them a 422 naming the field is a right answer too:
JUDGED_BEYOND_THE_SCHEMA = {
    # a filter and its order_by go through the search grammar (which names it compares, how)
    ("POST", "/api/runs/search"), ("POST", "/api/runs/page"),
    # a rule's text or mapping goes through the rule parser; select may also name a stored rule
    ("POST", "/api/registry/rules"), ("POST", "/api/registry/select"),
    # a webhook's host is resolved and refused when private or loopback, unless the settings allow it
    ("POST", "/api/registry/webhooks"),
    # feature references must name registered views and features (or a service)
    ("POST", "/api/features/online"),
    # a definition's spec must be one that spec() writes, its source one the server may read; a training set's
    # body must be Parquet whose rows carry the join keys and a timestamp
    ("POST", "/api/features/definitions"), ("POST", "/api/features/definitions/plan"),
    ("POST", "/api/features/training-set"),
    # the five lists of a metric batch must be of one length
    ("POST", "/api/metrics/batch"),
    # a param's value is bounded by the length of its JSON text and by its nesting
    ("POST", "/api/runs/{run_id}/params"),
    # a monitor's window and lateness are durations (5m to 1d for a window), its start a time with a zone
    ("POST", "/api/monitors"), ("GET", "/api/monitors/{name}/series"), ("GET", "/api/monitors/{name}/profile"),
    # alert rules go through the rule parser; a silence must end in the future
    ("PUT", "/api/alerts/rules"), ("POST", "/api/alerts/silences"),
    # a chunk of a flow artifact must fit the upload it belongs to (its offset and Content-Length within size)
    ("PUT", "/api/flows/cas/{sha}"),
}
_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # the check's own default
CONFIG = SchemathesisConfig.from_dict({"operations": [
    {"include-method": method, "include-path": path,
     "checks": {"positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, "422"]}}}
    for method, path in sorted(JUDGED_BEYOND_THE_SCHEMA)]})

# A training set's entity rows travel as Parquet: the fuzzer sends its drawn bytes as they are.
schemathesis.serializer.alias("application/vnd.apache.parquet", "application/octet-stream")

# The document is read from the app itself (its home a throwaway folder, never the checkout) and carries
# no app, so that checks which send more requests (an undeclared method, a missing header) send them to
# the real server on 127.0.0.1 as well.
_schema_home = tempfile.mkdtemp(prefix="mloop-fuzz-schema-")
schema = schemathesis.openapi.from_dict(create_app(Settings.load(home=_schema_home)).openapi(), config=CONFIG)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("fuzz")
    yield from serve(Settings.load(home=str(home)))


@pytest.fixture(scope="module")
def live_ids(fuzz_server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """An experiment and a run that exist, for the fuzzer to address."""
    experiment = httpx.post(fuzz_server.url + "/api/experiments", json={"name": "fuzzed"}, timeout=20).json()
    run = httpx.post(fuzz_server.url + "/api/runs", json={"experiment_id": str(experiment["experiment_id"])},
                     timeout=20).json()
    return {"experiment_id": str(experiment["experiment_id"]), "run_id": run["run_id"]}


@schema.parametrize()
# The suite is a gate: it runs the same examples each time. MLOOP_FUZZ_EXPLORE=1 draws new ones.
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=os.environ.get("MLOOP_FUZZ_EXPLORE") != "1")
def test_api_conforms_to_its_openapi_document(case, fuzz_server, live_ids) -> None:  # type: ignore[no-untyped-def]
    # A drawn id is almost never one that exists, so the server answers 404 before it reads the body; every
    # other case (by the drawn id's length) addresses a real experiment or run, so that its body is judged.
    # Not the artifact routes: their document promises a subset of the paths the server takes (no '%', ':'
    # or control characters), so on a real run negative_data_rejection would see the others accepted.
    for name, real in live_ids.items():
        drawn = (case.path_parameters or {}).get(name)
        if isinstance(drawn, str) and len(drawn) % 2 == 0 and "/artifacts" not in case.operation.path:
            case.path_parameters[name] = real
    case.call_and_validate(base_url=fuzz_server.url, timeout=20)


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


def test_a_whole_number_written_as_a_float_is_an_integer(fuzz_server) -> None:  # type: ignore[no-untyped-def]
    """JSON Schema counts 1.0 as an integer, so the document promises it is a version; it used to be a 422."""
    answer = httpx.put(fuzz_server.url + "/api/registry/models/nobody/aliases/a", json={"version": 1.0}, timeout=20)
    assert answer.status_code == 404, answer.text
    answer = httpx.put(fuzz_server.url + "/api/registry/models/nobody/aliases/a", json={"version": 1.5}, timeout=20)
    assert answer.status_code == 422 and answer.json()["field"] == "version", answer.text


def test_a_name_with_a_trailing_newline_is_refused(fuzz_server) -> None:  # type: ignore[no-untyped-def]
    answer = httpx.post(fuzz_server.url + "/api/experiments", json={"name": "nightly\n"}, timeout=20)
    assert answer.status_code == 422 and answer.json()["field"] == "experiment", answer.text


def _integer_schemas(node: object) -> list[dict]:
    if isinstance(node, list):
        return [found for item in node for found in _integer_schemas(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if node.get("type") == "integer" else []
    return own + [found for value in node.values() for found in _integer_schemas(value)]


def test_integer_bounds_are_exact_json_integers() -> None:
    """Written as floats, 2**63 - 1 read back as 2**63: a generator then sent values the server refused."""
    bounds = [s[k] for s in _integer_schemas(schema.raw_schema) for k in ("minimum", "maximum") if k in s]
    assert bounds and all(type(b) is int and float(b) == b for b in bounds), bounds


def test_an_experiment_id_of_unicode_digits_is_not_found(fuzz_server) -> None:  # type: ignore[no-untyped-def]
    """'²' passes str.isdigit but not int(): it was a 422 naming no field, from int()'s own message."""
    answer = httpx.patch(fuzz_server.url + "/api/experiments/%C2%B2", json={"name": "x"}, timeout=20)
    assert answer.status_code == 404 and answer.json()["field"] == "experiment_id", answer.text


def test_downloading_an_artifact_a_run_does_not_have_is_a_404(fuzz_server, live_ids) -> None:  # type: ignore[no-untyped-def]
    """Found with real ids: whether a path names a file is the run's state, so it was wrongly a 422."""
    answer = httpx.get(f"{fuzz_server.url}/api/runs/{live_ids['run_id']}/artifacts/never/logged.txt", timeout=20)
    assert answer.status_code == 404 and answer.json()["field"] == "path", answer.text


@pytest.mark.parametrize("name", ["plot.png", "notes.txt", "weights.0"])
def test_a_downloaded_artifact_has_a_content_type_the_document_declares(fuzz_server, live_ids, name: str) -> None:  # type: ignore[no-untyped-def]
    """Found with real ids: a file is typed by its name, and the document declared only JSON."""
    put = httpx.put(f"{fuzz_server.url}/api/runs/{live_ids['run_id']}/artifacts/{name}", content=b"x", timeout=20)
    assert put.status_code == 201, put.text
    case = schema["/api/runs/{run_id}/artifacts/{path}"]["GET"].Case(
        path_parameters={"run_id": live_ids["run_id"], "path": name})
    case.call_and_validate(base_url=fuzz_server.url, timeout=20)
