"""What both HTTP apps (``mloop server`` and ``mloop serve``) share about their OpenAPI documents.

* the JSON error body ``{error_code, message, field}`` and the statuses that the edges of
  every app may answer with it, declared on each operation by one function;
* the ``Allow`` header of a 405, listing every method the path supports;
* the ``/docs`` (Swagger UI) and ``/redoc`` pages, whose scripts and styles come from the
  installed ``fastapi-offline`` package and are served under ``/docs/static``: the pages
  work offline and never load code from another host.
"""

from __future__ import annotations

import html
import importlib.util
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from mloop.errors import MissingDependencyError

__all__ = ["ERROR_REF", "ERROR_SCHEMA", "STATIC_PREFIX", "allowed_methods", "declare_errors", "docs_routes",
           "error_responses"]

ERROR_REF = "#/components/schemas/Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error_code", "message", "field"],
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"},
                   "field": {"type": ["string", "null"]}},
}

# Why each status may come back; the edges of both apps answer 400 (bad Host, malformed request),
# 413 (body over the size limit) and 415 (a body that is not JSON) before any handler runs.
_REASONS = {
    400: "Malformed request, or a Host header that is not allowed",
    401: "No valid token or session: sign in, or send a token",
    404: "Nothing with that name or id exists",
    409: "The request contradicts stored state (a name taken, a version already moved)",
    413: "The body is larger than the configured limit",
    415: "The body's content type is not one this operation reads",
    422: "A value is rejected: the body says which field, the value and what was expected",
    429: "Too many attempts: wait for the time Retry-After gives",
    503: "The model or a backend is unavailable",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for ``statuses``, each with the JSON error body (for a route's ``responses=``)."""
    return {str(status): {"description": _REASONS.get(status, "Error"),
                          "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}}
            for status in statuses}


def declare_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Declare, on every operation of ``doc``, the error statuses that any operation of its kind can answer.

    Every operation may answer 400; one with a body also 413 and 415; one with parameters or a body
    also 422; one with path parameters also 404 (the name or id in the path is unknown). Statuses a
    route declares itself are kept, and a 422 that describes another body than ours (FastAPI's
    ``HTTPValidationError``) is replaced, since the error handlers answer every error with ``Error``.
    """
    doc.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                _declare_operation(path, operation, item.get("parameters", []))
    schemas = doc["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def _declare_operation(path: str, operation: dict[str, Any], shared_params: list[dict[str, Any]]) -> None:
    params = [*shared_params, *operation.get("parameters", [])]
    statuses = [400]
    if "requestBody" in operation:
        statuses += [413, 415, 422]
    elif params:
        statuses.append(422)
    if "{" in path:
        statuses.append(404)
    responses = operation.setdefault("responses", {})
    for status, response in error_responses(*statuses).items():
        declared = responses.get(status)
        if declared is None or "HTTPValidationError" in str(declared):
            responses[status] = response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope, paths: dict[str, Any] | None = None) -> str:
    """The ``Allow`` header for ``scope``'s path: every method that a route answers on it.

    Starlette's own 405 names only the methods of the first route whose path matches, although a
    path often has one route per method (``GET`` and ``POST /experiments``); each method is tried
    against every route here, so routers nested in routers answer too. When the path also fits a
    parametrized route (``/runs/search`` fits ``GET /runs/{run_id}``), the OpenAPI ``paths`` say
    which resource it is: the methods of the template with the fewest parameters that fits.
    """
    routes = list(routes)
    methods = [m for m in _METHODS if any(r.matches({**scope, "method": m})[0] == Match.FULL for r in routes)]
    documented = _documented_methods(paths or {}, scope["path"])
    narrowed = [m for m in methods if m in documented]
    return ", ".join(narrowed or methods)


def _documented_methods(paths: dict[str, Any], path: str) -> set[str]:
    fitting = [t for t in paths if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(t)), path)]
    if not fitting:
        return set()
    template = min(fitting, key=lambda t: t.count("{"))
    return {m.upper() for m in paths[template]} | ({"HEAD"} if "get" in paths[template] else set())


# ---------------------------------------------------------------- the docs pages
STATIC_PREFIX = "/docs/static"

_SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" type="image/png" href="{static}/favicon.png">
<link rel="stylesheet" href="{static}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script nonce="{nonce}">
SwaggerUIBundle({{url: "{spec}", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null}});
</script>
</body></html>"""

_REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" type="image/png" href="{static}/favicon.png"></head>
<body><redoc spec-url="{spec}"></redoc>
<script src="{static}/redoc.standalone.js"></script>
</body></html>"""


def _static_folder() -> Path:
    spec = importlib.util.find_spec("fastapi_offline")  # found, not imported: serving needs no FastAPI
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("The package 'fastapi-offline' ships the /docs and /redoc assets and is not "
                                     "installed; install it with: pip install fastapi-offline")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _policy(nonce: str) -> str:
    # Only this server's scripts (and the page's own inline start-up line) run, and nothing is fetched
    # from another host: Redoc's sidebar shows a logo from its vendor's CDN, which this blocks (it then
    # hides the image). Redoc's search runs in a worker made from a blob: URL.
    return (f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; worker-src 'self' blob:; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'")


def docs_routes(title: str, openapi_url: str = "/openapi.json") -> list[BaseRoute]:
    """``/docs``, ``/redoc`` and their assets under ``/docs/static``, all from the installed package."""

    def page(template: str) -> Any:
        async def render(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")
            nonce = secrets.token_urlsafe(16)
            body = template.format(title=html.escape(title), static=root + STATIC_PREFIX, spec=root + openapi_url,
                                   nonce=nonce)
            return HTMLResponse(body, headers={"Content-Security-Policy": _policy(nonce)})
        return render

    return [Route("/docs", page(_SWAGGER), methods=["GET"], include_in_schema=False),
            Route("/redoc", page(_REDOC), methods=["GET"], include_in_schema=False),
            Mount(STATIC_PREFIX, StaticFiles(directory=_static_folder()), name="docs-static")]
