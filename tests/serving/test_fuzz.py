"""``mloop serve`` fuzzed from its own OpenAPI document, with schemathesis's conformance checks on.

Two small served models (one with a shadow version, one without) behind a real server on 127.0.0.1:
every answer must be one the document declares (status, content type, body schema, headers), a 405
must carry ``Allow``, no input may cause a 5xx or a hang, and input the document calls valid is accepted
(positive_data_acceptance, with the exception below for predictions).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from mloop.config import Settings
from mloop.serving import EndpointConfig, ServeConfig, create_serving_app
from mloop.serving.openapi import openapi
from tests.serving.conftest import Served, running, save_trip_model

_folder = Path(tempfile.mkdtemp(prefix="mloop-fuzz-serving-"))
_v1, _v2 = save_trip_model(_folder / "v1", slope=2.0), save_trip_model(_folder / "v2", slope=3.0)
CONFIG = ServeConfig(endpoints=[EndpointConfig(name="trips", uri=str(_v1), shadow=str(_v2)),
                                EndpointConfig(name="plain", uri=str(_v2), log=False)])

# positive_data_acceptance: every request that matches the document must succeed (or find nothing: 404).
# A prediction also needs what JSON Schema cannot say: columns of one length, rows as wide as their column
# names, a tensor's shape that fits its data, CSV that parses, and values that fit the model's training
# schema (ranges, categories). For the operations that predict, a 400 or 422 naming the field is a right
# answer too; every other operation (health, metadata, schema, feedback) must accept all valid input.
PREDICTING = [("POST", path) for path in ["/predict", "/invocations", "/models/{name}/invocations",
                                         "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer",
                                         *(f"/predict/{e.name}" for e in CONFIG.endpoints)]]
_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # the check's own default
CHECKS = SchemathesisConfig.from_dict({"operations": [
    {"include-method": method, "include-path": path,
     "checks": {"positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, "400", "422"]}}}
    for method, path in PREDICTING]})

# The document comes from an app over the same models; it carries no app, so that checks which send
# more requests (an undeclared method, a missing header) send them to the real server too.
schema = schemathesis.openapi.from_dict(
    openapi(create_serving_app(CONFIG, Settings.load(home=str(_folder / "schema-home"))).state.serving),
    config=CHECKS)


@pytest.fixture(scope="module")
def fuzz_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running(CONFIG, Settings.load(home=str(tmp_path_factory.mktemp("fuzz-serving")))) as served:
        yield served


@schema.parametrize()
# The suite is a gate: it runs the same examples each time. MLOOP_FUZZ_EXPLORE=1 draws new ones.
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=os.environ.get("MLOOP_FUZZ_EXPLORE") != "1")
def test_serving_conforms_to_its_openapi_document(case, fuzz_served: Served) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(base_url=fuzz_served.url, timeout=20)


def test_every_route_is_in_the_document() -> None:
    app = create_serving_app(CONFIG, Settings.load(home=str(_folder / "routes-home")))
    documented = set(openapi(app.state.serving)["paths"])
    served = {getattr(r, "path", "") for r in app.routes} - {"/docs", "/redoc", "/docs/static", "/predict/{name}"}
    assert served <= documented, served - documented


def test_a_405_carries_allow(fuzz_served: Served) -> None:
    for path, method in [("/v2/models/trips", "GET"), ("/predict", "POST"), ("/docs", "GET")]:
        answer = httpx.request("TRACE", fuzz_served.url + path, timeout=20)
        assert answer.status_code == 405 and method in answer.headers["allow"], (path, answer.headers)
