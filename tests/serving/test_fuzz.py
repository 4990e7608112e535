"""``mloop serve`` fuzzed from its own OpenAPI document, with schemathesis's conformance checks on.

Two small served models (one with a shadow version, one without) behind a real server on 127.0.0.1:
every answer must be one the document declares (status, content type, body schema, headers), a 405
must carry ``Allow``, and no input may cause a 5xx or a hang.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from mloop.config import Settings
from mloop.serving import EndpointConfig, ServeConfig, create_serving_app
from mloop.serving.openapi import openapi
from tests.serving.conftest import Served, running, save_trip_model

_folder = Path(tempfile.mkdtemp(prefix="mloop-fuzz-serving-"))
_v1, _v2 = save_trip_model(_folder / "v1", slope=2.0), save_trip_model(_folder / "v2", slope=3.0)
CONFIG = ServeConfig(endpoints=[EndpointConfig(name="trips", uri=str(_v1), shadow=str(_v2)),
                                EndpointConfig(name="plain", uri=str(_v2), log=False)])

# The document comes from an app over the same models; it carries no app, so that checks which send
# more requests (an undeclared method, a missing header) send them to the real server too.
schema = schemathesis.openapi.from_dict(
    openapi(create_serving_app(CONFIG, Settings.load(home=str(_folder / "schema-home"))).state.serving))

# Left off: positive_data_acceptance expects every body that matches the JSON Schema to succeed, but a
# prediction also needs what JSON Schema cannot say: columns of one length, rows as wide as their column
# names, a tensor's shape that fits its data, CSV that parses, and values that fit the model's training
# schema (ranges, categories). The server answers those with a 400 or 422 naming the field, rightly.
EXCLUDED = [positive_data_acceptance]


@pytest.fixture(scope="module")
def fuzz_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running(CONFIG, Settings.load(home=str(tmp_path_factory.mktemp("fuzz-serving")))) as served:
        yield served


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_serving_conforms_to_its_openapi_document(case, fuzz_served: Served) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(base_url=fuzz_served.url, timeout=20, excluded_checks=EXCLUDED)


def test_every_route_is_in_the_document() -> None:
    app = create_serving_app(CONFIG, Settings.load(home=str(_folder / "routes-home")))
    documented = set(openapi(app.state.serving)["paths"])
    served = {getattr(r, "path", "") for r in app.routes} - {"/docs", "/redoc", "/docs/static", "/predict/{name}"}
    assert served <= documented, served - documented


def test_a_405_carries_allow(fuzz_served: Served) -> None:
    for path, method in [("/v2/models/trips", "GET"), ("/predict", "POST"), ("/docs", "GET")]:
        answer = httpx.request("TRACE", fuzz_served.url + path, timeout=20)
        assert answer.status_code == 405 and method in answer.headers["allow"], (path, answer.headers)
