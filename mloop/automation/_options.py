"""The one check behind every trigger's and action's options: required present, nothing unknown, numbers are
numbers."""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidInputError


def check_options(raw: dict[str, Any], required: set[str], optional: set[str], where: str, what: str,
                  numbers: tuple[str, ...] = ()) -> dict[str, Any]:
    """``raw`` when it has every ``required`` option, no other than ``optional``, and numbers where needed."""
    missing, unknown = required - set(raw), set(raw) - required - optional
    if missing:
        raise InvalidInputError(field=f"{where}.{sorted(missing)[0]}", value=None,
                                expected=f"{what} needs {sorted(required)}")
    if unknown:
        raise InvalidInputError(field=f"{where}.{sorted(unknown)[0]}", value=raw[sorted(unknown)[0]],
                                expected=f"options of {what}: {sorted(required | optional)}")
    for number in numbers:
        if number in raw and (isinstance(raw[number], bool) or not isinstance(raw[number], int | float)):
            raise InvalidInputError(field=f"{where}.{number}", value=raw[number], expected="a number")
    return dict(raw)
