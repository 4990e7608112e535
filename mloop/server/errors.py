"""Every error leaves the server as JSON ``{error_code, message, field}`` with a 4xx for bad input."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from mloop._util.openapi import allowed_methods
from mloop.errors import MloopError

log = logging.getLogger("mloop.server")
# fields whose value a refusal never quotes: a sign-in's token over the length limit is still somebody's token
_SECRET_FIELDS = frozenset({"token", "password", "secret"})


def _body(code: str, message: str, field: str | None) -> dict[str, str | None]:
    return {"error_code": code, "message": message, "field": field}


def install_error_handlers(app: FastAPI) -> None:
    """Map MloopError subclasses, validation errors and HTTP errors to the JSON error body."""

    @app.exception_handler(MloopError)
    async def _mloop(_: Request, exc: MloopError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        got = first.get("input")
        message = f"{field or 'request'}: {first.get('msg', 'invalid')}"
        if got is not None and not isinstance(got, dict | list) and not (loc and loc[-1].lower() in _SECRET_FIELDS):
            message += f" (got {got!r})"
        return JSONResponse(_body("INVALID_INPUT", message, field), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of the first route matched
            headers["Allow"] = allowed_methods(request.app.routes, request.scope, request.app.openapi()["paths"])
        return JSONResponse(_body(code, str(exc.detail), None), status_code=exc.status_code, headers=headers)

    @app.exception_handler(ValueError)
    async def _value(_: Request, exc: ValueError) -> JSONResponse:
        # A ValueError escaping a handler is bad input that slipped past validation.
        return JSONResponse(_body("INVALID_INPUT", str(exc), None), status_code=422)
