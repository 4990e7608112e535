"""Typed parameter values: stored as text with a type tag, read back as the same type.

Every JSON-like value that reaches storage (params, tags, dataset schemas, model metadata,
dict artifacts) is bounded here first: a value nested deeper than ``MAX_JSON_DEPTH`` would be
stored fine and then break every reader (serializers and ``dataclasses.asdict`` recurse), so it
is refused at the edge; one already stored reads back as its raw text instead.

>>> check_json_depth("params.deep", {"a": [1, {"b": 2}]})
3
>>> decode_param("[[[1]]]", "json")
[[[1]]]
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from mloop._util.names import check_text
from mloop.errors import InvalidInputError

MAX_PARAM_CHARS = 6000
MAX_TAG_CHARS = 8000
# Real configurations nest a handful of levels; 32 leaves room and stays far below every
# recursive reader's limit (orjson stops at 254, Python's recursion limit is 1000).
MAX_JSON_DEPTH = 32
_MEASURE_UP_TO = 100_000
_FLOAT_MAX = int(sys.float_info.max)
_LONG = "; log long values as an artifact"
_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")


def json_depth(value: Any, stop_after: int = MAX_JSON_DEPTH) -> int:
    """How deep dicts and lists nest in ``value`` (a scalar is 0), counting no further than ``stop_after + 1``.

    Iterative, so a hostile value cannot exhaust the stack; stopping early also ends cycles.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > stop_after:
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json_depth(field: str, value: Any) -> int:
    """The nesting depth of ``value``; InvalidInputError naming ``field`` when it passes MAX_JSON_DEPTH."""
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        measured = json_depth(value, _MEASURE_UP_TO)  # only now count on, to say what was given
        given = f"{measured} levels" if measured <= _MEASURE_UP_TO else f"over {_MEASURE_UP_TO} levels (or a cycle)"
        raise InvalidInputError(
            f"{field}: got a value nested {given} deep, expected at most {MAX_JSON_DEPTH} levels of nested "
            "lists and objects; flatten it or log it as an artifact.",
            field=field, value=f"<nested {given} deep>", expected=f"at most {MAX_JSON_DEPTH} levels of nesting")
    return depth


def check_json_size(field: str, text: str, max_chars: int, hint: str = "") -> str:
    """``text`` (a value's JSON) when it has at most ``max_chars`` characters."""
    if len(text) > max_chars:
        raise InvalidInputError(
            f"{field}: got {len(text)} characters ({text[:40]!r}...), expected at most {max_chars}{hint}.",
            field=field, value=text[:60] + "...", expected=f"at most {max_chars} characters")
    return text


def check_tags(tags: dict[str, Any], field: str = "tags") -> dict[str, str]:
    """Tags as text, each value bounded in length and free of NUL bytes."""
    return {k: check_text(str(v), f"{field}.{k}", MAX_TAG_CHARS) for k, v in tags.items()}


def check_params(params: dict[str, Any]) -> None:
    """Raise InvalidInputError for the first param that could not be stored (checked before any transport)."""
    for key, value in params.items():
        encode_param(key, value)


def encode_param(key: str, value: Any) -> tuple[str, str, float | None]:
    """(text, vtype, number) for a param value; numbers also kept as floats for numeric filters."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # NumPy scalars
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool", float(value)
    if isinstance(value, int):
        _check_int(key, value)
        return str(value), "int", float(value)
    if isinstance(value, float):
        return repr(value), "float", value if math.isfinite(value) else None
    if isinstance(value, str):
        text = check_text(value, f"params.{key}")
        # a string that spells a number is also that number, so ``params.p = 3`` finds "3" as MLflow users expect
        return check_json_size(f"params.{key}", text, MAX_PARAM_CHARS, _LONG), "str", numeric_text(text)
    else:
        check_json_depth(f"params.{key}", value)
        stack = [value]  # the depth is bounded now
        while stack:
            item = stack.pop()
            if isinstance(item, int) and not isinstance(item, bool):
                _check_int(key, item)
            elif isinstance(item, dict | list | tuple):
                stack.extend(item.values() if isinstance(item, dict) else item)
        try:
            text, vtype = json.dumps(value, sort_keys=True, default=str), "json"
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(field=f"params.{key}", value=value,
                                    expected="a number, string, bool, or JSON-serializable value") from exc
    check_json_size(f"params.{key}", text, MAX_PARAM_CHARS, _LONG)
    return text, vtype, None


def numeric_text(text: str) -> float | None:
    """The finite number a param's text spells (``"3"``, ``"-1.5e3"``), else None (``"nan"``, ``"1_000"``)."""
    if len(text) > 64 or not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _check_int(key: str, value: int) -> None:
    if not -_FLOAT_MAX <= value <= _FLOAT_MAX:  # float() fails, and JSON readers (orjson) refuse it
        raise InvalidInputError(f"params.{key}: got an int of {value.bit_length()} bits, expected one a float "
                                "can hold (at most about 1.8e308); log it as a string.", field=f"params.{key}",
                                value=f"<an int of {value.bit_length()} bits>",
                                expected="an int of at most about 1.8e308; log it as a string")


def decode_param(text: str, vtype: str) -> Any:
    """The typed value back from storage.

    A JSON value stored before values were bounded (too deep to parse or to serve) comes back
    as its raw JSON text, so its run stays readable.
    """
    if vtype == "int":
        return int(text)
    if vtype == "float":
        return float(text)
    if vtype == "bool":
        return text == "true"
    if vtype == "json":
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return text
        return value if json_depth(value) <= MAX_JSON_DEPTH else text
    return text
