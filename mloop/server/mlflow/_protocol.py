"""What every MLflow route shares: the prefixes, and errors in MLflow's shape.

The mlflow client raises ``MlflowException`` from the body ``{"error_code": ..., "message": ...}`` and picks its
exception by ``error_code`` (``RESOURCE_DOES_NOT_EXIST``, ``INVALID_PARAMETER_VALUE``, ...), so a route under
these prefixes answers with MLflow's codes and statuses. The body also carries mloop's ``field`` (the client reads
only the two keys it knows), so it is the one error shape the whole server documents.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from mloop.errors import MloopError

log = logging.getLogger("mloop.server")

# the tracking and registry API, the same API as the MLflow web UI calls it
MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts"

# mloop's error codes as MLflow's, with the HTTP status MLflow's own server answers them with
_CODES: dict[str, tuple[str, int]] = {
    "NOT_FOUND": ("RESOURCE_DOES_NOT_EXIST", 404),
    "ALREADY_EXISTS": ("RESOURCE_ALREADY_EXISTS", 400),
    "INVALID_INPUT": ("INVALID_PARAMETER_VALUE", 400),
    "CONFLICT": ("INVALID_STATE", 400),
    "DATA_INTEGRITY": ("INVALID_STATE", 400),
    "NOT_FITTED": ("INVALID_STATE", 400),
    "BACKEND_ERROR": ("TEMPORARILY_UNAVAILABLE", 503),
    "MISSING_DEPENDENCY": ("INTERNAL_ERROR", 500),
    "USER_CODE_ERROR": ("INTERNAL_ERROR", 500),
}


class MlflowError(Exception):
    """An error in MLflow's vocabulary, raised by a route that speaks it: ``MlflowError("message", code=...)``."""

    def __init__(self, message: str, code: str = "INVALID_PARAMETER_VALUE", status: int = 400,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.status, self.field = message, code, status, field


def mlflow_error(code: str, message: str, status: int, field: str | None = None) -> JSONResponse:
    """The body and status MLflow's server answers an error with, and the field at fault when known."""
    return JSONResponse({"error_code": code, "message": message, "field": field}, status_code=status)


def translate(exc: Exception) -> JSONResponse | None:
    """``exc`` as MLflow's error answer, or ``None`` when it is not one the protocol names (a real bug)."""
    if isinstance(exc, MlflowError):
        return mlflow_error(exc.code, exc.message, exc.status, exc.field)
    if isinstance(exc, MloopError):
        code, status = _CODES.get(exc.error_code, ("INTERNAL_ERROR", exc.http_status))
        return mlflow_error(code, exc.message, status, exc.field)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")) or "request"
        return mlflow_error("INVALID_PARAMETER_VALUE", f"{field}: {first.get('msg', 'invalid')}", 400, field)
    if isinstance(exc, HTTPException):
        code = {404: "ENDPOINT_NOT_FOUND", 405: "ENDPOINT_NOT_FOUND"}.get(exc.status_code, "BAD_REQUEST")
        return mlflow_error(code, str(exc.detail), exc.status_code)
    if isinstance(exc, ValueError):  # bad input that slipped past validation
        return mlflow_error("INVALID_PARAMETER_VALUE", str(exc), 400)
    return None


class MlflowRoute(APIRoute):
    """A route whose errors leave in MLflow's shape: ``APIRouter(route_class=MlflowRoute)``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                answer = translate(exc)
                if answer is None:
                    raise
                return answer

        return handle
