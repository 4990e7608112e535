"""What the REST API's OpenAPI document says about a text value, from the same constants as its checks.

The handlers' services validate names, keys, free text and URIs themselves (their errors name the field
and say what was expected); these types only put the same regex and limits into the document, so that a
client, or a fuzzer, knows which values the server takes before it sends them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator, Field

from mloop._util.names import (
    KEY_PATTERN,
    MAX_KEY,
    MAX_NAME,
    MAX_PATH,
    MAX_TEXT,
    NAME_PATTERN,
    NO_NUL_PATTERN,
    PLAIN_PATH_PATTERN,
)
from mloop.registry._audit import ACTIONS
from mloop.registry.lineage import DIGEST_PATTERN
from mloop.registry.uri import ALIAS_PATTERN, MODELS_URI_PATTERN, RUNS_URI_PATTERN
from mloop.tracking._values import MAX_TAG_CHARS

__all__ = ["AliasPath", "AuditAction", "Description", "DigestPath", "Key", "ModelUriQuery", "Name", "OptionalName",
           "OptionalTextQuery", "PathPrefixQuery", "PlainPath", "RunsUri", "Tags", "Text", "TextPath", "documented",
           "integer", "keyed", "optional"]


def documented(pattern: str | None = None, *, max_length: int | None = None, **extra: Any) -> dict[str, Any]:
    """JSON Schema keywords for a string: ``pattern`` and ``maxLength`` when given, plus ``extra``."""
    keywords: dict[str, Any] = dict(extra)
    if pattern is not None:
        keywords["pattern"] = pattern
    if max_length is not None:
        keywords["maxLength"] = max_length
    return keywords


def optional(pattern: str) -> str:
    """``pattern`` (anchored with ^ and $) that also matches the empty string."""
    return f"^(?:{pattern[1:-1]})?$"


Name = Annotated[str, Field(json_schema_extra=documented(NAME_PATTERN, max_length=MAX_NAME))]
# a name that may be left empty (the server then picks one)
OptionalName = Annotated[str, Field(json_schema_extra=documented(optional(NAME_PATTERN), max_length=MAX_NAME))]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY, json_schema_extra=documented(KEY_PATTERN))]
_KEY_NAMES = {"propertyNames": {"minLength": 1, **documented(KEY_PATTERN, max_length=MAX_KEY)}}


def keyed(value: Any, key: Any = str) -> Any:
    """An object whose keys the service checks as keys (``check_key``) and whose values are ``value``.

    The key pattern goes into ``propertyNames``: pydantic would put it into ``patternProperties``, which
    constrains the values of matching keys but lets any other key through.
    """
    return Annotated[dict[key, value], Field(json_schema_extra=_KEY_NAMES)]
RunsUri = Annotated[str, Field(json_schema_extra=documented(RUNS_URI_PATTERN))]


def Text(max_chars: int = MAX_TEXT) -> Any:  # noqa: N802 (a type)
    """Free text as ``check_text`` takes it: without NUL, at most ``max_chars`` characters."""
    return Annotated[str, Field(json_schema_extra=documented(NO_NUL_PATTERN, max_length=max_chars))]


Description = Text()
# tags whose keys are checked as keys (check_key) and values as text (check_tags)
Tags = keyed(Text(MAX_TAG_CHARS))
AliasPath = Annotated[str, Path(json_schema_extra=documented(ALIAS_PATTERN, max_length=256))]
ModelUriQuery = Annotated[str, Query(json_schema_extra=documented(MODELS_URI_PATTERN))]
AuditAction = Annotated[str | None, Query(json_schema_extra={"enum": [*ACTIONS, None]})]
# Text in a path or query that reaches a database query: PostgreSQL cannot hold a NUL, so both backends refuse it
# (refuse_nul_parameters); anything else is judged by the lookup (a 404 when nothing has that name).
TextPath = Annotated[str, Path(json_schema_extra=documented(NO_NUL_PATTERN))]
OptionalTextQuery = Annotated[str | None, Query(json_schema_extra=documented(NO_NUL_PATTERN))]
# an artifact's or extra file's path: the document promises the plain ones (see PLAIN_PATH_PATTERN)
PlainPath = Annotated[str, Path(json_schema_extra=documented(PLAIN_PATH_PATTERN, max_length=MAX_PATH))]
# the folder to list, or '' for every artifact
PathPrefixQuery = Annotated[str, Query(json_schema_extra=documented(optional(PLAIN_PATH_PATTERN), max_length=MAX_PATH))]
DigestPath = Annotated[str, Path(json_schema_extra=documented(DIGEST_PATTERN))]


def _json_integer(value: Any) -> Any:
    # JSON Schema counts 5.0 as an integer, so it is one here too; pydantic's lax mode would also turn true and
    # "5" into numbers, which the document says are not integers
    if isinstance(value, bool | str):
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    return value


def integer(minimum: int, maximum: int) -> Any:
    """A whole JSON number from ``minimum`` to ``maximum`` (5.0 counts; 5.5, true and "5" do not).

    Both bounds must be exact as floats: FastAPI's document model stores them as floats, and many JSON
    readers do too (2**63 - 1 as a float is 2**63, a bound the server would refuse).
    """
    if float(minimum) != minimum or float(maximum) != maximum:
        raise ValueError(f"bounds {minimum}, {maximum} are not exact as floats")
    return Annotated[int, Field(ge=minimum, le=maximum), BeforeValidator(_json_integer)]


# the int64 range, less the top 1023 values, which a float cannot tell apart from 2**63
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1024
