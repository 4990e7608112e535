"""The OpenAPI description of a serving app, built from the served signatures (no pydantic needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.serving.app import ServingState

__all__ = ["openapi"]

_JSON_TYPES = {"float": "number", "integer": "integer", "boolean": "boolean", "string": "string",
               "datetime": "string"}

def _record_schema(state: ServingState, name: str) -> dict[str, Any]:
    sig = state.endpoints[name].primary.model.loaded.signature
    if sig is None:
        return {"type": "object"}
    return {"type": "object", "required": [c.name for c in sig.inputs],
            "properties": {c.name: {"type": _JSON_TYPES.get(c.type, "string"), "nullable": c.nullable}
                           for c in sig.inputs}}


def _errors() -> dict[str, Any]:
    error = {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {"400": {**error, "description": "Malformed JSON or a body that follows no known format"},
            "422": {**error, "description": "Values rejected by the signature or training schema: one entry per field"},
            "503": {**error, "description": "Model failing or too slow, and no fallback configured"}}


def openapi(state: ServingState) -> dict[str, Any]:
    """An OpenAPI 3.1 document for every route, with each model's input record as a schema."""
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "properties": {
            "error_code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "field": {"type": "string"}, "expected": {"type": "string"}, "value": {},
                "row": {"type": ["integer", "null"]}, "message": {"type": "string"}}}}}},
        "Predictions": {"type": "object", "properties": {"predictions": {"type": "array", "items": {}},
                                                         "ids": {"type": "array", "items": {"type": "string"}},
                                                         "model": {"type": "string"}, "version": {"type": "string"}}},
    }
    paths: dict[str, Any] = {}
    for name in state.endpoints:
        schemas[f"{name}.record"] = _record_schema(state, name)
        ref = {"$ref": f"#/components/schemas/{name}.record"}
        body = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
            ref, {"type": "array", "items": ref},
            {"type": "object", "properties": {"records": {"type": "array", "items": ref}}},
            {"type": "object", "properties": {"columns": {"type": "object"}}}]}}}}
        paths[f"/predict/{name}"] = {"post": {
            "summary": f"Predict with {name} (records or columns)", "requestBody": body,
            "responses": {"200": {"description": "Predictions with their ids", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Predictions"}}}}, **_errors()}}}
    paths["/predict"] = {"post": {"summary": "Predict with the default model", "responses": {"200": {
        "description": "Predictions"}, **_errors()}}}
    paths["/invocations"] = {"post": {"summary": "MLflow scoring protocol: dataframe_split, dataframe_records, "
                                                 "instances or inputs", "responses": {"200": {
                                                     "description": "{predictions: [...]}"}, **_errors()}}}
    paths["/v2/models/{name}/infer"] = {"post": {"summary": "Open Inference Protocol v2 inference",
                                                 "responses": {"200": {"description": "outputs"}, **_errors()}}}
    for path, summary in [("/v2/models/{name}", "Model metadata (OIP v2)"), ("/v2/models/{name}/ready", "Model ready"),
                          ("/v2/health/live", "Server live"), ("/v2/health/ready", "Server ready"),
                          ("/health/live", "Liveness"), ("/health/ready", "Readiness"),
                          ("/metrics", "Prometheus metrics"), ("/schema", "Signature of the default model"),
                          ("/models", "Served models, versions, weights, cache and breaker state"),
                          ("/models/{name}/shadow", "Shadow agreement and latency comparison")]:
        paths[path] = {"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}
    paths["/feedback"] = {"post": {"summary": "Attach ground-truth labels to prediction ids",
                                   "requestBody": {"content": {"application/json": {"schema": {
                                       "type": "object", "properties": {"id": {"type": "string"}, "label": {}}}}}},
                                   "responses": {"200": {"description": "accepted"}, **_errors()}}}
    return {"openapi": "3.1.0", "info": {"title": "mloop serving", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas}}
