"""Training schemas on the request path: ``serving_check(schema)`` turns violations into per-field errors.

Serving calls the returned function on every request's (already signature-checked) frame. Frames of up
to 16 rows take ``validate``'s small path, and JSON integers are accepted where floats are expected.
Violations of severity "error" come back as ``FieldError`` (the server answers 422 listing them);
"warn" ones never reject a request: they go to ``on_warn`` (the server counts them).

>>> import pandas as pd
>>> from mloop.validation import infer_schema
>>> check = serving_check(infer_schema(pd.DataFrame({"hour": [0, 8, 23]})))
>>> [(e.field, e.value, e.expected) for e in check(pd.DataFrame({"hour": [77]}))]
[('hour', 77, 'values in the range [0, 23]')]
>>> check(pd.DataFrame({"hour": [9]}))
[]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mloop.registry.signature import FieldError
from mloop.validation.schema import Schema, load_schema
from mloop.validation.validate import Violation, _plain, validate

__all__ = ["serving_check", "to_field_errors"]


def to_field_errors(violations: Sequence[Violation]) -> list[FieldError]:
    """One ``FieldError`` per violation: the column, what was expected, the first offending value and row."""
    out = []
    for v in violations:
        sample = v.samples[0] if v.samples else None
        expected = f"values in the range {v.expected}" if v.check == "range" else v.expected
        out.append(FieldError(field=v.column, expected=expected,
                              value=_plain(sample["value"]) if sample else None,
                              row=int(sample["row"]) if sample else None, message=v.message))
    return out


def serving_check(schema: Schema | dict[str, Any] | str, *, columns: Sequence[str] | None = None,
                  on_warn: Callable[[list[Violation]], None] | None = None) -> Callable[[Any], list[FieldError]]:
    """A check ``frame -> list[FieldError]`` enforcing ``schema`` (only its ``columns`` when given:
    a training schema also describes the label and keys that a request does not carry)."""
    schema = load_schema(schema)
    keep = set(columns) if columns is not None else set(schema.columns)
    schema = Schema({c.name: c for c in schema if c.name in keep}, True, schema.version, schema.rows)

    def check(frame: Any) -> list[FieldError]:
        result = validate(frame, schema, strict_numbers=False)
        if not result.violations:
            return []
        if on_warn is not None and result.warnings:
            on_warn(result.warnings)
        return to_field_errors(result.errors)

    check.schema = schema  # type: ignore[attr-defined]
    return check
