"""Typed parameter values: stored as text with a type tag, read back as the same type."""

from __future__ import annotations

import json
import math
from typing import Any

from mloop.errors import InvalidInputError

MAX_PARAM_CHARS = 6000


def encode_param(key: str, value: Any) -> tuple[str, str, float | None]:
    """(text, vtype, number) for a param value; numbers also kept as floats for numeric filters."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # NumPy scalars
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool", float(value)
    if isinstance(value, int):
        return str(value), "int", float(value)
    if isinstance(value, float):
        return repr(value), "float", value if math.isfinite(value) else None
    if isinstance(value, str):
        text, vtype = value, "str"
    else:
        try:
            text, vtype = json.dumps(value, sort_keys=True, default=str), "json"
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(field=f"params.{key}", value=value,
                                    expected="a number, string, bool, or JSON-serializable value") from exc
    if len(text) > MAX_PARAM_CHARS:
        raise InvalidInputError(field=f"params.{key}", value=text[:60] + "...",
                                expected=f"at most {MAX_PARAM_CHARS} characters; log long values as an artifact")
    return text, vtype, None


def decode_param(text: str, vtype: str) -> Any:
    """The typed value back from storage."""
    if vtype == "int":
        return int(text)
    if vtype == "float":
        return float(text)
    if vtype == "bool":
        return text == "true"
    if vtype == "json":
        return json.loads(text)
    return text
