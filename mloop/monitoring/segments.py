"""Declared segments: named row conditions over a window's inputs, e.g. ``{"long": "km > 10 and city = 'Oslo'"}``,
whose performance is stored per window as the slice ``segment=<name>`` (the segment's own metrics, as Arize and
Fiddler report a segment).

A segment is written in the language of automation rules' ``when`` (comparisons, arithmetic, and/or/not over input
columns, numbers and quoted strings), parsed once by its parser, never eval'd, and evaluated over a window's rows
as arrays. As in ``when``, a comparison whose field is missing (no such column, or a null) is false.

>>> import pandas as pd
>>> found = parse_segments({"long": "km > 10"})
>>> segment_mask(found[0][1], pd.DataFrame({"km": [3.0, 12.0, None]})).tolist()
[False, True, False]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mloop._util.conditions import COMPARE, Condition, Node, parse_when
from mloop._util.names import check_name
from mloop.errors import InvalidInputError

__all__ = ["parse_segments", "segment_fields", "segment_mask", "SEGMENT_PREFIX", "MAX_SEGMENTS"]

SEGMENT_PREFIX = "segment="
MAX_SEGMENTS = 50
_EXAMPLE = "a condition over input columns such as km > 10 and city = 'Oslo'"


def parse_segments(segments: Mapping[str, str] | None) -> list[tuple[str, Condition]]:
    """Each segment's name and parsed condition; a bad name or condition is an error naming ``segments.<name>``."""
    if segments is None:
        return []
    if not isinstance(segments, Mapping):
        raise InvalidInputError(field="segments", value=segments, expected="a mapping of names to conditions")
    if len(segments) > MAX_SEGMENTS:
        raise InvalidInputError(field="segments", value=f"{len(segments)} segments",
                                expected=f"at most {MAX_SEGMENTS}")
    return [(check_name(name, "segments"), _parse_one(name, source)) for name, source in segments.items()]


def _parse_one(name: str, source: Any) -> Condition:
    field = f"segments.{name}"
    if not isinstance(source, str) or not source.strip():
        raise InvalidInputError(field=field, value=source, expected=_EXAMPLE)
    try:
        condition = parse_when(source)
    except InvalidInputError as error:  # the parser points at the mistake; say which segment it is in
        message = str(error).replace("in 'when'", f"in segment {name!r}", 1)
        raise InvalidInputError(message, field=field, value=source, expected=_EXAMPLE) from None
    if not condition.fields():
        raise InvalidInputError(field=field, value=source, expected=f"{_EXAMPLE} (it names no column)")
    return condition


def segment_fields(segments: list[tuple[str, Condition]]) -> list[str]:
    """The columns the segments read."""
    return sorted({f for _, condition in segments for f in condition.fields()})


def segment_mask(condition: Condition, rows: pd.DataFrame) -> np.ndarray:
    """True for each row of ``rows`` in the segment."""
    if condition.tree is None:
        return np.ones(len(rows), dtype=bool)
    return _truth(condition.tree, rows)


def _truth(node: Node, rows: pd.DataFrame) -> np.ndarray:
    if node.kind == "and":
        return _truth(node.items[0], rows) & _truth(node.items[1], rows)
    if node.kind == "or":
        return _truth(node.items[0], rows) | _truth(node.items[1], rows)
    if node.kind == "not":
        return ~_truth(node.items[0], rows)
    value = _compare(node, rows) if node.kind == "cmp" else _value(node, rows)
    if value is None:
        return np.zeros(len(rows), dtype=bool)
    if np.ndim(value) == 0:
        return np.full(len(rows), bool(value))
    series = pd.Series(value, copy=False)
    return np.asarray(series.where(series.notna(), False).astype(bool), dtype=bool)


def _compare(node: Node, rows: pd.DataFrame) -> np.ndarray | None:
    left, right = (_value(item, rows) for item in node.items)
    if left is None or right is None:
        return None
    compare = COMPARE[node.value]
    try:
        found = compare(left, right)
    except TypeError:  # a column of mixed types: row by row, text against a number false as in ``when``
        found = _row_by_row(compare, left, right, len(rows))
    missing = _nulls(left, len(rows)) | _nulls(right, len(rows))
    return np.asarray(found, dtype=bool) & ~missing


def _row_by_row(compare: Any, left: Any, right: Any, n: int) -> np.ndarray:
    lefts = left.tolist() if isinstance(left, pd.Series) else [left] * n
    rights = right.tolist() if isinstance(right, pd.Series) else [right] * n
    found = np.zeros(n, dtype=bool)
    for i, (a, b) in enumerate(zip(lefts, rights, strict=True)):
        try:
            found[i] = bool(compare(a, b))
        except TypeError:
            pass
    return found


def _nulls(value: Any, n: int) -> np.ndarray:
    if isinstance(value, pd.Series):
        return value.isna().to_numpy()
    return np.zeros(n, dtype=bool)


def _value(node: Node, rows: pd.DataFrame) -> Any:
    """A scalar, a column as a Series, or None when a column the node needs is absent or not a number."""
    if node.kind in ("num", "str", "bool"):
        return node.value
    if node.kind == "field":
        return rows[node.value].reset_index(drop=True) if node.value in rows else None
    if node.kind in ("neg", "arith"):
        operands = [_numbers(_value(item, rows)) for item in node.items]
        if any(o is None for o in operands):
            return None
        if node.kind == "neg":
            return -operands[0]
        left, right = operands
        if node.value == "/":  # a division by zero is missing, as in ``when``
            right = right.where(right != 0) if isinstance(right, pd.Series) else (right or None)
            if right is None:
                return None
        return {"+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
                "/": lambda: left / right}[node.value]()
    return pd.Series(_truth(node, rows))


def _numbers(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return None
    if isinstance(value, pd.Series):
        return value if value.dtype.kind in "iuf" else None
    return value
