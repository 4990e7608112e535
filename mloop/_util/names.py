"""Validation of the names people choose (experiments, runs, keys)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from mloop.errors import InvalidInputError

_NAME = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
_KEY = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
MAX_NAME = 256
MAX_KEY = 250


def check_name(value: object, field: str = "name") -> str:
    """Return ``value`` if it is a valid human-chosen name, else raise InvalidInputError."""
    expected = f"a non-empty string of at most {MAX_NAME} letters, digits, spaces or _-./:"
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise InvalidInputError(field=field, value=value, expected=expected)
    if not _NAME.match(value):
        raise InvalidInputError(field=field, value=value, expected=expected)
    return value


def check_key(value: object, field: str = "key") -> str:
    """Return ``value`` if it is a valid metric, param or tag key."""
    if not isinstance(value, str) or not value or len(value) > MAX_KEY or not _KEY.match(value):
        raise InvalidInputError(
            field=field,
            value=value,
            expected=f"a non-empty string of at most {MAX_KEY} letters, digits or _-./: and spaces",
        )
    if value.startswith("/") or ".." in value.split("/"):
        raise InvalidInputError(field=field, value=value, expected="a key without '..' or a leading '/'")
    return value


def check_artifact_path(value: object, field: str = "path") -> str:
    """A relative POSIX path inside a run's artifacts or a store (see ``check_relative_path``)."""
    return check_relative_path(value, field)


_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_PATH = 1000
_PATH_EXPECTED = ("a relative path like 'plots/loss.png': names separated by '/', none of them empty, '.' or '..', "
                  "no leading '/', backslash, drive letter or NUL byte, also after URL-decoding")


def check_relative_path(value: object, field: str = "path", *, max_length: int = MAX_PATH) -> str:
    """``value`` if it is a relative POSIX path that cannot leave the folder it is joined to, else
    InvalidInputError naming ``field``.

    A form that only becomes dangerous once URL-decoded (``%2e%2e%2f``, or ``%252e`` decoded twice) is refused
    too: some layer between the user and the file system may decode it again.
    """
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidInputError(field=field, value=value, expected=_PATH_EXPECTED)
    form, previous = value, None
    while form != previous:  # decode until nothing changes; every form along the way is checked
        if not _is_plain_relative(form):
            raise InvalidInputError(field=field, value=value, expected=_PATH_EXPECTED)
        previous, form = form, unquote(form)
    return value


def _is_plain_relative(form: str) -> bool:
    if not form or "\\" in form or "\0" in form or form.startswith("/") or _DRIVE.match(form):
        return False
    return not any(part in ("", ".", "..") for part in form.split("/"))
