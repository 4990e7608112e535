"""The OpenAPI description of a serving app, built from the served signatures (no pydantic needed).

It lists every route of ``create_serving_app`` with its path parameters (a model ``name`` is one of
the served names), its body, the content types and body schemas of its answers, and the error
statuses it can answer with the JSON error body; schemathesis checks that the server keeps to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop._util.openapi import ERROR_SCHEMA, declare_errors, error_responses

if TYPE_CHECKING:
    from mloop.serving.app import ServingState

__all__ = ["openapi"]

_JSON_TYPES = {"float": "number", "integer": "integer", "boolean": "boolean", "string": "string",
               "datetime": "string"}
_OBJECT = {"type": "object"}
_FIELD_ERRORS = {"type": "array", "items": {"type": "object", "properties": {
    "field": {"type": "string"}, "expected": {"type": "string"}, "value": {},
    "row": {"type": ["integer", "null"]}, "message": {"type": "string"}}}}
_SCHEMAS: dict[str, Any] = {
    # the shared error body, plus the per-field list of a 422 from the signature or training schema
    "Error": {**ERROR_SCHEMA, "properties": {**ERROR_SCHEMA["properties"], "errors": _FIELD_ERRORS}},
    "Predictions": {"type": "object", "required": ["predictions", "ids", "model", "version"], "properties": {
        "predictions": {"type": "array", "items": {}}, "ids": {"type": "array", "items": {"type": "string"}},
        "model": {"type": "string"}, "version": {"type": "string"},
        "probabilities": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "classes": {"type": "array", "description": "the class label of each probability's position"}}},
}
_ROWS = {"type": "array", "minItems": 1, "items": {"type": "array"}}
_RECORDS = {"type": "array", "minItems": 1, "items": _OBJECT}
_COLUMNS = {"type": "object", "minProperties": 1, "additionalProperties": {"type": "array", "minItems": 1}}


def _keyed(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: schema}}


# MLflow's scoring formats: exactly one of the keys (oneOf), other keys are ignored; positional rows
# follow the model's column order, records and columns name theirs
_INVOCATIONS_BODY = {"oneOf": [
    _keyed("dataframe_split", {"type": "object", "required": ["data"], "properties": {
        "columns": {"type": "array", "items": {"type": "string"}}, "data": _ROWS}}),
    _keyed("dataframe_records", _RECORDS),
    *(_keyed(key, {"oneOf": [_ROWS, _RECORDS, _COLUMNS]}) for key in ("instances", "inputs"))]}
_OUTPUT_PARAM = {"name": "output", "in": "query", "required": False, "description": "label (default), proba "
                 "(class probabilities) or both; the model's declared default when absent",
                 "schema": {"type": "string", "enum": ["label", "proba", "both"]}}
_V2_BODY = {"type": "object", "required": ["inputs"], "properties": {
    "id": {"type": "string"}, "parameters": {"type": "object"},
    "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "enum": ["predictions", "probabilities"]}}}},
    "inputs": {
    "type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string"}, "data": {"type": "array"}}}}}}
_V2_ANSWER = {"type": "object", "required": ["model_name", "outputs"], "properties": {
    "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
    "outputs": {"type": "array", "items": _OBJECT}}}
_FEEDBACK_ITEM = {"type": "object", "required": ["id", "label"], "properties": {
    "id": {"type": "string", "pattern": "^[0-9a-f]{20}-[0-9]+$", "description": "one of the ids of a /predict answer"},
    "label": {}}}


def _record_schema(state: ServingState, name: str) -> dict[str, Any]:
    sig = state.endpoints[name].primary.model.loaded.signature
    if sig is None:
        return {"type": "object"}
    return {"type": "object", "required": [c.name for c in sig.inputs],
            "properties": {c.name: _column_schema(c, sig.unknown_categories) for c in sig.inputs}}


_ENUM_UP_TO = 1_000  # categories listed in the document; a longer list is checked by the server alone


def _column_schema(column: Any, unknown_categories: str) -> dict[str, Any]:
    if column.type != "category":
        return {"type": _JSON_TYPES.get(column.type, "string"), "nullable": column.nullable}
    values = list(column.categories or ())
    kinds = {"string" if isinstance(v, str) else "number" for v in values} or {"string"}
    out: dict[str, Any] = {"nullable": column.nullable}
    if len(kinds) == 1:  # mixed strings and numbers: any JSON scalar, so no type
        out["type"] = kinds.pop()
    # "missing" reads an unknown value as null only where nulls are allowed; elsewhere it is refused as under "reject"
    if (unknown_categories == "reject" or not column.nullable) and len(values) <= _ENUM_UP_TO:
        out["enum"] = values + ([None] if column.nullable else [])
    return out


def _predict_body(name: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{name}.record"}
    records = {"type": "array", "minItems": 1, "items": ref}
    # anyOf, not oneOf: an object with a "records" key may also hold every column of a record; the server reads
    # such a body as its records (then "columns", then a single record), so it is valid, not ambiguous
    return {"anyOf": [_keyed("records", records), _keyed("columns", _COLUMNS), ref, records]}


def _ok(description: str, schema: dict[str, Any] | None = None, media: str = "application/json") -> dict[str, Any]:
    return {"200": {"description": description, "content": {media: {"schema": schema or _OBJECT}}}}


def _op(summary: str, ok: dict[str, Any], *errors: int, body: dict[str, Any] | None = None,
        media: tuple[str, ...] = ("application/json",), params: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {**ok, **error_responses(*errors)}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {
            m: {"schema": body if m == "application/json" else {"type": "string"}} for m in media}}
    if params:
        operation["parameters"] = list(params)
    return operation


def _path_param(name: str, values: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": values} if values else {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _model_paths(names: list[str]) -> dict[str, Any]:
    """The routes whose path names a served model."""
    name = _path_param("name", names)
    ready = _ok("The model is loaded and the server ready")
    return {
        "/models/{name}/invocations": {"post": _op(
            "MLflow scoring protocol for one model", _ok("{predictions: [...]}"), 503, body=_INVOCATIONS_BODY,
            media=("application/json", "text/csv"), params=(name, _OUTPUT_PARAM))},
        "/v2/models/{name}/infer": {"post": _op("Open Inference Protocol v2 inference", _ok("outputs", _V2_ANSWER),
                                                503, body=_V2_BODY, params=(name, _OUTPUT_PARAM))},
        "/v2/models/{name}/versions/{version}/infer": {"post": _op(
            "Open Inference Protocol v2 inference (the version in the path is informative)",
            _ok("outputs", _V2_ANSWER), 503, body=_V2_BODY, params=(name, _path_param("version"), _OUTPUT_PARAM))},
        "/v2/models/{name}": {"get": _op("Model metadata (OIP v2)", _ok("name, versions, inputs, outputs"),
                                         params=(name,))},
        "/v2/models/{name}/ready": {"get": _op("Model ready (OIP v2)", ready, 503, params=(name,))},
        "/schema/{name}": {"get": _op("Signature of a served model", _ok("name, version, flavor, signature"),
                                      params=(name,))},
        "/models/{name}/shadow": {"get": _op("Shadow agreement and latency comparison", _ok("comparison"),
                                             params=(name,))},
    }


def _server_paths() -> dict[str, Any]:
    """The routes about the server itself."""
    paths: dict[str, Any] = {}
    for path, summary in [("/health/ready", "Readiness"), ("/health", "Readiness"), ("/ping", "Readiness"),
                          ("/v2/health/ready", "Server ready (OIP v2)")]:
        paths[path] = {"get": _op(summary, _ok("ready"), 503)}
    for path, summary in [("/health/live", "Liveness"), ("/v2/health/live", "Server live (OIP v2)"),
                          ("/v2", "Server metadata (OIP v2)"), ("/schema", "Signature of the default model"),
                          ("/models", "Served models, versions, weights, cache and breaker state"),
                          ("/openapi.json", "This document")]:
        paths[path] = {"get": _op(summary, _ok("OK"))}
    paths["/metrics"] = {"get": _op("Prometheus metrics", _ok("metrics", {"type": "string"}, "text/plain"))}
    paths["/feedback"] = {"post": _op(
        "Attach ground-truth labels to prediction ids", _ok("accepted"), 409,
        body={"oneOf": [_FEEDBACK_ITEM, {"type": "array", "minItems": 1, "items": _FEEDBACK_ITEM},
                        {"type": "object", "required": ["feedback"], "properties": {"feedback": {
                            "type": "array", "minItems": 1, "items": _FEEDBACK_ITEM}}}]})}
    return paths


def openapi(state: ServingState) -> dict[str, Any]:
    """An OpenAPI 3.1 document for every route, with each model's input record as a schema."""
    names = sorted(state.endpoints)
    schemas = dict(_SCHEMAS)
    predictions = {"$ref": "#/components/schemas/Predictions"}
    paths: dict[str, Any] = {}
    for name in names:
        schemas[f"{name}.record"] = _record_schema(state, name)
        paths[f"/predict/{name}"] = {"post": _op(f"Predict with {name} (records or columns)",
                                                 _ok("Predictions with their ids", predictions), 503,
                                                 body=_predict_body(name), params=(_OUTPUT_PARAM,))}
    paths["/predict"] = {"post": _op(f"Predict with the default model ({state.default.name})",
                                     _ok("Predictions with their ids", predictions), 503,
                                     body=_predict_body(state.default.name), params=(_OUTPUT_PARAM,))}
    paths["/invocations"] = {"post": _op("MLflow scoring protocol: dataframe_split, dataframe_records, instances or "
                                         "inputs", _ok("{predictions: [...]}"), 503, body=_INVOCATIONS_BODY,
                                         media=("application/json", "text/csv"), params=(_OUTPUT_PARAM,))}
    paths.update(_model_paths(names))
    paths.update(_server_paths())
    return declare_errors({"openapi": "3.1.0", "info": {"title": "mloop serving", "version": "1"}, "paths": paths,
                           "components": {"schemas": schemas}})
