"""The serving ASGI app: Starlette routes over ``Endpoint`` objects, orjson in and out.

The request path parses with orjson, checks the rows in plain Python and builds the model
input once; no pydantic model is built per request. Routes:

* ``POST /predict`` and ``/predict/{name}``: records or columns; answers predictions and their ids
* ``POST /invocations``: MLflow's scoring format (JSON or CSV)
* ``/v2/...``: the Open Inference Protocol (health, model metadata, ready, infer)
* ``POST /feedback``: labels for prediction ids
* ``GET /health/live``, ``/health/ready``, ``/metrics``, ``/schema``, ``/models``,
  ``/models/{name}/shadow``, ``/openapi.json``, ``/docs`` and ``/redoc`` (assets under ``/docs/static``)
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mloop._util.asgi import BodyRule, protect
from mloop._util.openapi import docs_routes
from mloop.config import Settings
from mloop.serving._inputs import Columns
from mloop.serving._payload import PayloadError, parse_invocations, parse_predict, parse_v2
from mloop.serving.config import EndpointConfig, ServeConfig
from mloop.serving.metrics import Metrics
from mloop.serving.model import ServedModel
from mloop.serving.openapi import openapi
from mloop.serving.outputs import LABEL_TENSOR, PROBA_TENSOR, body_fields, requested_output, v2_outputs, v2_requested
from mloop.serving.predlog import PredictionLog
from mloop.serving.rollout import apply_rollout, follows_rollouts, read_rollout
from mloop.serving.routing import Arm, Endpoint, InputRejected, ModelUnavailable, Result

__all__ = ["ServingState", "create_serving_app"]

log = logging.getLogger("mloop.serving")

_JSON = "application/json"
_OPTS = orjson.OPT_SERIALIZE_NUMPY


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data, option=_OPTS), status_code=status, media_type=_JSON, headers=headers)


def _error(status: int, code: str, message: str, field: str | None = None, **extra: Any) -> Response:
    return _json({"error_code": code, "message": message, "field": field, **extra}, status)


def _internal_error(model: str, route: str, exc: Exception) -> Response:
    """A 500 that names the kind of failure and an id to find it in the log; its text (paths, values, the
    model's internals) stays in the log."""
    error_id = uuid.uuid4().hex[:12]
    log.error("error %s: %s failed on %s", error_id, model, route, exc_info=exc)
    return _error(500, "INTERNAL_ERROR", f"Predicting with {model} failed ({type(exc).__name__}); the server log "
                  f"has the details under error id {error_id}.", id=error_id)


class ServingState:
    """Everything a serving app holds: endpoints, metrics, the prediction log and the reload thread."""

    def __init__(self, config: ServeConfig, settings: Settings | None = None, client: Any = None) -> None:
        self.config = config
        self.settings = settings or Settings.load()
        self.metrics = Metrics()
        self.log = PredictionLog(self.settings, flush_seconds=config.log_flush_seconds) \
            if any(e.log for e in config.endpoints) else None
        self._client = client
        self.endpoints = {e.name: self._endpoint(e) for e in config.endpoints}
        self.default = self.endpoints[config.endpoints[0].name]
        self.started = False  # the app's lifespan began (and has not ended)
        self.reloads: list[str] = []
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from mloop.registry import registry_for

            self._client = registry_for(self.settings)
        return self._client

    @property
    def ready(self) -> bool:
        """Started, and every served version answered its input example through the request path."""
        return self.started and not self.not_ready()

    def not_ready(self) -> dict[str, str]:
        """``{"<name> <role> v<version>": why}`` for every served version that cannot answer yet."""
        return {f"{e.name} {a.role} v{a.model.version}": a.model.not_ready for e in self.endpoints.values()
                for a in [*e.arms, *([e.shadow] if e.shadow else [])] if a.model.not_ready is not None}

    def readiness(self) -> tuple[dict[str, Any], int]:
        """The body and status of the readiness routes."""
        if not self.started:
            return {"status": "starting"}, 503
        reasons = self.not_ready()
        if reasons:
            return {"status": "not ready", "reasons": reasons}, 503
        return {"status": "ready"}, 200

    def _load(self, uri: str) -> ServedModel:
        needs_registry = uri.startswith(("models:/", "runs:/", "deployments:/"))
        model = ServedModel.load(uri, client=self.client if needs_registry else None, trusted=self.config.trusted)
        model.warm_up()
        return model

    def _endpoint(self, cfg: EndpointConfig) -> Endpoint:
        primary_weight = 1.0 - sum(w for _, w in cfg.ab)
        arms = [Arm("primary", cfg.uri, self._load(cfg.uri), primary_weight, cfg, self.metrics, cfg.name)]
        arms += [Arm(f"variant-{i + 1}", uri, self._load(uri), weight, cfg, self.metrics, cfg.name)
                 for i, (uri, weight) in enumerate(cfg.ab)]
        shadow = None
        if cfg.shadow:
            shadow = Arm("shadow", cfg.shadow, self._load(cfg.shadow), 0.0,
                         EndpointConfig(name=cfg.name, uri=cfg.shadow), self.metrics, cfg.name)
        return Endpoint(cfg, arms, shadow, self.metrics, self.log)

    # ------------------------------------------------------------------ hot reload
    def start_reloading(self) -> None:
        moving = any(a.model.moves for e in self.endpoints.values()
                     for a in [*e.arms, *([e.shadow] if e.shadow else [])])
        moving = moving or any(follows_rollouts(e.config) for e in self.endpoints.values())
        if self.config.reload_seconds > 0 and moving:
            self._poller = threading.Thread(target=self._poll, name="mloop-reload", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.config.reload_seconds):
            self.reload_now()

    def reload_now(self) -> list[str]:
        """Check every moving URI once and swap in what moved (what the poller does each period)."""
        changed: list[str] = []
        for endpoint in self.endpoints.values():
            try:
                changed += endpoint.reload_if_moved(self.client, self.config.trusted)
                if follows_rollouts(endpoint.config):
                    rollout = read_rollout(self.client.get_model(endpoint.primary.model.name).tags)
                    changed += apply_rollout(endpoint, rollout, self._load)
            except Exception as exc:  # keep serving the old version; say so in the metrics
                self.metrics.event(endpoint.name, "reload_failed")
                self.reloads.append(f"{endpoint.name}: reload failed: {exc}")
        self.reloads += changed
        return changed

    async def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(30)
        for endpoint in self.endpoints.values():
            await endpoint.close()
        if self.log is not None:
            self.log.close()


Parser = Callable[[Any, Endpoint], tuple[dict[str, list[Any]], int, str | None]]
Renderer = Callable[[Result, Any, Endpoint], Any]


def create_serving_app(config: ServeConfig | None = None, settings: Settings | None = None,
                       client: Any = None) -> Starlette:
    """The ASGI app serving ``config``'s models (models load now; the log and reloads start with the app).

    Without arguments it reads the configuration that ``mloop serve`` left in
    ``MLOOP_SERVE_CONFIG`` (how uvicorn's worker processes get it).
    """
    if config is None:
        import os

        config = ServeConfig.from_json(os.environ["MLOOP_SERVE_CONFIG"])
    state = ServingState(config, settings, client)

    def endpoint_of(request: Request) -> Endpoint | None:
        name = request.path_params.get("name")
        return state.default if name is None else state.endpoints.get(name)

    def handler(route: str, parse: Parser, render: Renderer) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            endpoint = endpoint_of(request)
            if endpoint is None:
                return _error(404, "NOT_FOUND", f"No model named '{request.path_params['name']}' is served here; "
                                                f"served: {sorted(state.endpoints)}.", "name")
            body = await request.body()
            failed_arm = None
            try:
                wanted = requested_output(request.query_params.get("output"), "output")
                if route == "/invocations" and request.headers.get("content-type", "").startswith("text/csv"):
                    columns, n = _csv(body)
                    payload = in_body = None
                else:
                    payload = orjson.loads(body)
                    columns, n, in_body = parse(payload, endpoint)
                if n == 0:
                    raise PayloadError("the request has no rows", field="rows")
                key = endpoint.sticky_key(columns, request.headers.get("x-mloop-key"))
                result = await endpoint.infer(columns, n, key, output=in_body or wanted)
            except orjson.JSONDecodeError as exc:
                response = _error(400, "MALFORMED_JSON", f"The body is not valid JSON: {exc}", "body")
            except PayloadError as exc:
                response = _error(400, "BAD_REQUEST", exc.message, exc.field)
            except InputRejected as exc:
                version = exc.model.version if exc.model else None
                response = _error(422, "INVALID_INPUT", f"{len(exc.errors)} field(s) are rejected by the signature or "
                                  f"training schema of {endpoint.name} v{version}", exc.errors[0].field,
                                  errors=[e.to_dict() for e in exc.errors])
            except ModelUnavailable as exc:
                failed_arm = getattr(exc, "role", "primary"), getattr(exc, "version", endpoint.primary.model.version)
                response = _error(503, "MODEL_UNAVAILABLE", str(exc))
            except Exception as exc:  # the model's or ours: a JSON answer, counted, and the details only in the log
                response = _internal_error(endpoint.name, route, exc)
            else:
                headers = {"x-model-version": result.model.version, "x-prediction-id": result.request_id}
                if result.fallback:
                    headers["x-mloop-fallback"] = "1"
                if result.cached:
                    headers["x-mloop-cache"] = "hit"
                response = _json(render(result, payload, endpoint), headers=headers)
                state.metrics.observe(endpoint.name, result.model.version, route, 200,
                                      time.perf_counter() - started, n)
                return response
            seconds = time.perf_counter() - started
            state.metrics.observe(endpoint.name, endpoint.primary.model.version, route, response.status_code,
                                  seconds, 0)
            if state.log is not None:  # its monitors count errors per window; a failed canary counts as its own
                role, version = failed_arm or ("primary", endpoint.primary.model.version)
                state.log.record_error(endpoint.name, str(version), role, uuid.uuid4().hex, response.status_code,
                                       seconds)
            return response

        return handle

    def render_predict(result: Result, body: Any, endpoint: Endpoint) -> Any:
        rid = result.request_id
        return {**body_fields(result.outputs), "ids": [f"{rid}-{i}" for i in range(len(result.outputs))],
                "model": endpoint.name, "version": result.model.version}

    def render_invocations(result: Result, body: Any, endpoint: Endpoint) -> Any:
        return body_fields(result.outputs)

    def render_v2(result: Result, body: Any, endpoint: Endpoint) -> Any:
        # the protocol's id is the caller's to correlate: echoed when the request has one
        rid = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else result.request_id
        return {"model_name": endpoint.name, "model_version": result.model.version, "id": rid,
                "outputs": v2_outputs(result.outputs)}

    async def feedback(request: Request) -> Response:
        from mloop.serving._payload import check_depth

        try:
            body = orjson.loads(await request.body())
            check_depth(body)  # a deep label would fail the log's JSON encoder (500)
        except orjson.JSONDecodeError as exc:
            return _error(400, "MALFORMED_JSON", f"The body is not valid JSON: {exc}", "body")
        except PayloadError as exc:
            return _error(400, "BAD_REQUEST", exc.message, exc.field)
        items = body.get("feedback", [body]) if isinstance(body, dict) else body
        if not isinstance(items, list) or not items:
            return _error(400, "BAD_REQUEST", "expected {\"id\": ..., \"label\": ...} or a list of them", "body")
        labels = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "label" not in item:
                return _error(422, "INVALID_INPUT", f"feedback item {i} is {_short(item)}; expected an object "
                              "with a prediction 'id' and a 'label'", f"feedback[{i}]")
            pid = item.get("id")
            if not isinstance(pid, str) or not _PREDICTION_ID.match(pid):
                # an id no prediction can have would be stored and never join: say so now
                return _error(422, "INVALID_INPUT", f"feedback item {i}: 'id' is {_short(pid)}; expected a "
                              "prediction id from the 'ids' of a /predict answer (like '3f2a9c0d1e4b5a6c7d8e-0')",
                              f"feedback[{i}].id")
            labels.append((pid, item["label"]))
        if state.log is None:
            return _error(409, "CONFLICT", "The prediction log is off, so labels cannot be joined.", "log")
        state.log.feedback(labels)
        return _json({"accepted": len(labels)})

    async def live(request: Request) -> Response:
        return _json({"status": "live"})

    async def ready(request: Request) -> Response:
        body, status = state.readiness()
        return _json(body, status)

    async def metrics(request: Request) -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    async def schema(request: Request) -> Response:
        endpoint = endpoint_of(request)
        if endpoint is None:
            return _error(404, "NOT_FOUND", f"No model named '{request.path_params['name']}' is served here.", "name")
        model = endpoint.primary.model
        return _json({"name": endpoint.name, "version": model.version, "flavor": model.loaded.flavor,
                      **model.spec.schema()})

    async def models(request: Request) -> Response:
        return _json({"models": [e.describe() for e in state.endpoints.values()], "reloads": state.reloads[-20:]})

    async def shadow(request: Request) -> Response:
        endpoint = endpoint_of(request)
        if endpoint is None or endpoint.shadow is None:
            return _error(404, "NOT_FOUND", "That model has no shadow version.", "name")
        return _json({"name": endpoint.name, "primary": endpoint.primary.model.version,
                      "shadow": endpoint.shadow.model.version, **endpoint.comparison.summary()})

    async def v2_health(request: Request) -> Response:
        if request.url.path.endswith("/ready") and not state.ready:
            return _json({"ready": False, **state.readiness()[0]}, 503)
        return _json({"live": True} if request.url.path.endswith("/live") else {"ready": True})

    async def v2_server(request: Request) -> Response:
        return _json({"name": "mloop", "version": _version(), "extensions": []})

    async def v2_metadata(request: Request) -> Response:
        endpoint = endpoint_of(request)
        if endpoint is None:
            return _error(404, "NOT_FOUND", f"No model named '{request.path_params['name']}' is served here.", "name")
        model = endpoint.primary.model
        sig = model.loaded.signature
        inputs = [{"name": c.name, "datatype": _V2_TYPES.get(c.type, "BYTES"), "shape": [-1]}
                  for c in (sig.inputs if sig else ())]
        outputs = v2_output_metadata(model, sig.outputs if sig else ())
        return _json({"name": endpoint.name, "versions": [a.model.version for a in endpoint.arms],
                      "platform": f"mloop-{model.loaded.flavor}", "inputs": inputs, "outputs": outputs})

    async def v2_model_ready(request: Request) -> Response:
        endpoint = endpoint_of(request)
        if endpoint is None:
            return _error(404, "NOT_FOUND", f"No model named '{request.path_params['name']}' is served here.", "name")
        reasons = {k: v for k, v in state.not_ready().items() if k.startswith(f"{endpoint.name} ")}
        ready = state.started and not reasons
        return _json({"name": endpoint.name, "ready": ready, **({"reasons": reasons} if reasons else {})},
                     200 if ready else 503)

    async def openapi_json(request: Request) -> Response:
        return _json(openapi(state))

    def columns_of(endpoint: Endpoint) -> tuple[str, ...]:
        return endpoint.primary.model.spec.columns

    def with_params(parse: Callable[[Any], tuple[Columns, int]]) -> Parser:
        """A parser that also reads MLflow-style ``params`` (``{"output": ...}``) from an object body."""
        def parse_with_params(body: Any, endpoint: Endpoint) -> tuple[Columns, int, str | None]:
            output = None
            if isinstance(body, dict) and isinstance(body.get("params"), dict):  # else a field named params
                output = requested_output(body["params"].get("output"), "params.output")
                body = {k: v for k, v in body.items() if k != "params"}
            columns, n = parse(body)
            return columns, n, output

        return parse_with_params

    def parse_infer(body: Any, endpoint: Endpoint) -> tuple[Columns, int, str | None]:
        columns, n = parse_v2(body, columns_of(endpoint))
        return columns, n, v2_requested(body)

    predict = handler("/predict", with_params(parse_predict), render_predict)
    invocations = handler("/invocations", lambda body, e: with_params(
        lambda b: parse_invocations(b, columns_of(e)))(body, e), render_invocations)
    infer = handler("/v2/infer", parse_infer, render_v2)
    routes = [
        Route("/predict", predict, methods=["POST"]),
        Route("/predict/{name}", predict, methods=["POST"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/models/{name}/invocations", invocations, methods=["POST"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}", v2_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", v2_model_ready, methods=["GET"]),
        Route("/v2/health/live", v2_health, methods=["GET"]),
        Route("/v2/health/ready", v2_health, methods=["GET"]),
        Route("/v2", v2_server, methods=["GET"]),
        Route("/feedback", feedback, methods=["POST"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/health", ready, methods=["GET"]),
        Route("/ping", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/schema", schema, methods=["GET"]),
        Route("/schema/{name}", schema, methods=["GET"]),
        Route("/models", models, methods=["GET"]),
        Route("/models/{name}/shadow", shadow, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *docs_routes("mloop serving API"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.start_reloading()
        # Everything loaded so far (libraries, models) lives as long as the server: keep it out of the
        # garbage collector's full passes, which otherwise walk millions of objects and show up as p99 spikes.
        gc.collect()
        gc.freeze()
        state.started = True
        if not state.ready:
            log.error("not ready: %s", state.not_ready())
        try:
            yield
        finally:
            state.started = False
            await state.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    protect(app, state.settings, _EDGE_RULES)
    app.state.serving = state
    return app


# MLflow's scoring route also takes CSV; every other body is JSON.
_EDGE_RULES = (BodyRule(r"(/models/[^/]+)?/invocations$", media_types=frozenset({"text/csv"})),)

# ids of logged predictions: ``<request id (os.urandom(10).hex())>-<row>``, see ``Endpoint.infer``
_PREDICTION_ID = re.compile(r"^[0-9a-f]{20}-[0-9]+$")


def _short(value: Any) -> str:
    text = orjson.dumps(value, option=_OPTS).decode()
    return text if len(text) <= 60 else text[:57] + "..."


_V2_TYPES = {"float": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES", "datetime": "BYTES"}


def v2_output_metadata(model: ServedModel, declared: Any) -> list[dict[str, Any]]:
    """The output tensors infer answers: ``predictions`` (the labels; typed by the signature when it declares one
    output) and, when the model has class probabilities, ``probabilities`` [rows, classes]."""
    kind = _V2_TYPES.get(declared[0].type, "BYTES") if len(declared) == 1 else "BYTES"
    shape = list(declared[0].shape) if len(declared) == 1 else [-1]
    outputs: list[dict[str, Any]] = [{"name": LABEL_TENSOR, "datatype": kind, "shape": shape}]
    if model.proba_refusal is None:
        classes = model.classes or []
        outputs.append({"name": PROBA_TENSOR, "datatype": "FP64", "shape": [-1, len(classes) or -1],
                        "parameters": {"classes": classes}})
    return outputs


def _version() -> str:
    from mloop import __version__

    return __version__


def _csv(body: bytes) -> tuple[dict[str, list[Any]], int]:
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except Exception as exc:
        raise PayloadError(f"The body is not readable CSV: {exc}") from exc
    frame = frame.astype(object).where(frame.notna(), None)
    return {str(c): frame[c].tolist() for c in frame.columns}, len(frame)
