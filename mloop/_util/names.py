"""Validation of the names people choose (experiments, runs, keys)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from mloop.errors import InvalidInputError

# The patterns are public so that the OpenAPI documents describe names and keys with the same regex the
# checks below use. They avoid lookarounds, which not every JSON Schema tool can generate from.
_CHARS = r"A-Za-z0-9_\-. /:"
# letters, digits, spaces or _-./:, with at least one that is not a space
NAME_PATTERN = rf"^[{_CHARS}]*[A-Za-z0-9_\-./:][{_CHARS}]*$"
# the same characters, split by '/' into segments of which the first is not empty and none is '..'
_SEGMENT = r"(?:[A-Za-z0-9_\-. :]{3,}|[A-Za-z0-9_\- :][A-Za-z0-9_\-. :]|\.[A-Za-z0-9_\- :]|[A-Za-z0-9_\-. :])"
KEY_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT}?)*$"
_NAME = re.compile(NAME_PATTERN)
_KEY = re.compile(rf"^[{_CHARS}]+$")
_KEY_PATH = re.compile(KEY_PATTERN)
MAX_NAME = 256
MAX_KEY = 250
MAX_TEXT = 20_000
NO_NUL_PATTERN = r"^[^\x00]*$"  # what check_text takes, besides its length limit


def check_text(value: object, field: str, max_chars: int = MAX_TEXT) -> str:
    """Return ``value`` if it is free text that every store keeps alike: a string, bounded, without NUL.

    PostgreSQL refuses a NUL byte in text while SQLite stores it, so NUL is refused everywhere.
    """
    if not isinstance(value, str):
        raise InvalidInputError(field=field, value=value, expected="a string")
    if "\x00" in value:
        at = value.index("\x00")
        raise InvalidInputError(f"{field}: got text with a NUL byte at position {at} ({value[:40]!r}), "
                                "expected text without NUL (\\x00) characters.",
                                field=field, value=value[:60], expected="text without NUL (\\x00) characters")
    if len(value) > max_chars:
        raise InvalidInputError(f"{field}: got {len(value)} characters ({value[:40]!r}...), expected at most "
                                f"{max_chars}.", field=field, value=value[:60] + "...",
                                expected=f"at most {max_chars} characters")
    return value


def check_name(value: object, field: str = "name") -> str:
    """Return ``value`` if it is a valid human-chosen name, else raise InvalidInputError."""
    expected = f"a non-empty string of at most {MAX_NAME} letters, digits, spaces or _-./:"
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise InvalidInputError(field=field, value=value, expected=expected)
    if not _NAME.fullmatch(value):
        raise InvalidInputError(field=field, value=value, expected=expected)
    return value


def check_key(value: object, field: str = "key") -> str:
    """Return ``value`` if it is a valid metric, param or tag key."""
    if not isinstance(value, str) or not value or len(value) > MAX_KEY or not _KEY.fullmatch(value):
        raise InvalidInputError(
            field=field,
            value=value,
            expected=f"a non-empty string of at most {MAX_KEY} letters, digits or _-./: and spaces",
        )
    if not _KEY_PATH.fullmatch(value):  # the characters are fine: a leading '/' or a '..' segment
        raise InvalidInputError(field=field, value=value, expected="a key without '..' or a leading '/'")
    return value


def check_artifact_path(value: object, field: str = "path") -> str:
    """A relative POSIX path inside a run's artifacts or a store (see ``check_relative_path``)."""
    return check_relative_path(value, field)


_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_PATH = 1000
# The relative paths an API document can promise: those without '%' (decoding leaves them as they are), ':'
# (so no drive letter), backslash or control characters, whose '/'-separated names are none of '', '.', '..'.
# check_relative_path takes these and more ('%20' that decodes to a plain name); a regex cannot say which.
_PATH_CHAR, _PATH_CHAR_NOT_DOT = r"[^\x00-\x1f/\\%:]", r"[^\x00-\x1f/\\%:.]"
_PATH_NAME = (rf"(?:{_PATH_CHAR}{{3,}}|{_PATH_CHAR_NOT_DOT}{_PATH_CHAR}|\.{_PATH_CHAR_NOT_DOT}"
              rf"|{_PATH_CHAR_NOT_DOT})")
PLAIN_PATH_PATTERN = rf"^{_PATH_NAME}(?:/{_PATH_NAME})*$"
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


def refuse_nul_parameters(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                          executemany: bool) -> None:
    """A ``before_cursor_execute`` hook: InvalidInputError for a NUL byte in a text parameter of one statement.

    The edges check the text they store; this also catches text that only reaches a query (an id in a URL,
    a filter's value), where PostgreSQL's driver refuses NUL (a 500) and SQLite would compare it: both
    backends now answer alike. Bulk statements are skipped: their rows come from checked input, and scanning
    them would cost every metrics write. Those are executemany, and single statements of many rows whose
    caller sets the execution option ``mloop_checked_parameters`` (a multi-row INSERT).
    """
    if executemany or not parameters or getattr(context, "execution_options", {}).get("mloop_checked_parameters"):
        return
    if isinstance(parameters, dict):
        items: Any = parameters.items()
    else:
        names = getattr(getattr(context, "compiled", None), "positiontup", None)
        items = zip(names or range(len(parameters)), parameters, strict=False)
    for name, value in items:
        if type(value) is str and "\x00" in value:
            field = re.sub(r"(_\d+)+$", "", name) if isinstance(name, str) else "value"
            check_text(value, field)
