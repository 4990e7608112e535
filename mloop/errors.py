"""The errors mloop raises, one small tree; each is also a builtin.

    MloopError
    ├── NotFoundError(LookupError)            404  an experiment, run, model... does not exist
    ├── AlreadyExistsError                    409  a name is taken
    ├── InvalidInputError(ValueError)         422  bad input: carries .field, .value, .expected
    ├── ConflictError                         409  the request contradicts stored state
    │   └── DataIntegrityError                409  stored bytes differ from their recorded sha256
    ├── NotFittedError                        409  an estimator-like object used before fit()
    ├── MissingDependencyError(ImportError)   500  an optional package is not installed
    ├── BackendError                          503  a database, bucket or server failed
    └── UserCodeError                         500  the user's own code raised

Messages pass through ``mloop._util.redact``, so an error never shows a password or key from a URL it quotes.
Every class carries ``http_status`` and ``error_code`` so the server maps errors
generically and the HTTP client raises the same class again.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mloop._util.redact import redact

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "BackendError",
    "ConflictError",
    "DataIntegrityError",
    "InvalidInputError",
    "MissingDependencyError",
    "MloopError",
    "NotFittedError",
    "NotFoundError",
    "PermissionDeniedError",
    "UserCodeError",
    "error_class",
]


class MloopError(Exception):
    """The root of every error mloop raises on purpose."""

    http_status: ClassVar[int] = 500
    error_code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        message = redact(message)  # messages quote URLs and values: never a password or an access key
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message, "field": self.field}


class NotFoundError(MloopError, LookupError):
    http_status = 404
    error_code = "NOT_FOUND"


class AlreadyExistsError(MloopError):
    http_status = 409
    error_code = "ALREADY_EXISTS"


class InvalidInputError(MloopError, ValueError):
    """Bad input: says which field, which value, and what was expected."""

    http_status = 422
    error_code = "INVALID_INPUT"

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        value: Any = None,
        expected: str | None = None,
    ) -> None:
        if message is None:
            message = f"{field or 'value'}: got {value!r}, expected {expected}."
        super().__init__(message, field=field)
        self.value = value
        self.expected = expected


class ConflictError(MloopError):
    http_status = 409
    error_code = "CONFLICT"


class DataIntegrityError(ConflictError):
    """Stored bytes no longer match the sha256 recorded when they were written (corrupted or changed)."""

    error_code = "INTEGRITY_ERROR"

    def __init__(self, message: str | None = None, *, field: str | None = "path", path: str | None = None,
                 expected: str | None = None, actual: str | None = None) -> None:
        if message is None:
            message = (f"'{path}' is corrupt or was changed in the store: its sha256 is {actual}, but {expected} "
                       "was recorded when it was stored. Log it again, or restore it from a copy.")
        super().__init__(message, field=field)
        self.path, self.expected, self.actual = path, expected, actual

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path, "expected": self.expected, "actual": self.actual}


class NotFittedError(MloopError):
    http_status = 409
    error_code = "NOT_FITTED"


class MissingDependencyError(MloopError, ImportError):
    http_status = 500
    error_code = "MISSING_DEPENDENCY"


class BackendError(MloopError):
    http_status = 503
    error_code = "BACKEND_ERROR"


class UserCodeError(MloopError):
    http_status = 500
    error_code = "USER_CODE_ERROR"


class AuthenticationError(MloopError):
    """No identity, or a token that is unknown, expired or revoked."""

    http_status = 401
    error_code = "UNAUTHENTICATED"


class PermissionDeniedError(MloopError, PermissionError):
    """An identity whose roles do not allow what it asked for."""

    http_status = 403
    error_code = "PERMISSION_DENIED"


_BY_CODE = {
    cls.error_code: cls
    for cls in (
        MloopError,
        NotFoundError,
        AlreadyExistsError,
        InvalidInputError,
        ConflictError,
        DataIntegrityError,
        NotFittedError,
        MissingDependencyError,
        BackendError,
        UserCodeError,
        AuthenticationError,
        PermissionDeniedError,
    )
}


def error_class(error_code: str) -> type[MloopError]:
    """The error class for a code sent by the server (``MloopError`` when unknown)."""
    return _BY_CODE.get(error_code, MloopError)
