"""Bounds shared by the recursive-descent parsers (the run filter and the selection rules).

Each '(' or NOT costs a parser a few stack frames, and the SQL or evaluator built from the tree
recurses as deep again; a hostile expression gets a clear error instead of exhausting either.

>>> guard = Nesting(ValueError)
>>> with guard:
...     guard.depth
1
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from mloop.errors import InvalidInputError

MAX_NESTING = 50
MAX_SOURCE = 10_000


class Nesting:
    """A depth counter entered once per nested level; past MAX_NESTING it raises the parser's own error.

    ``error`` builds that error from a description, so it can point at the parser's position.
    """

    def __init__(self, error: Callable[[str], Exception]) -> None:
        self.depth = 0
        self.error = error

    def __enter__(self) -> Nesting:
        if self.depth >= MAX_NESTING:
            raise self.error(f"more than {MAX_NESTING} nested parentheses or NOTs; flatten the expression")
        self.depth += 1
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.depth -= 1


def check_source(source: str, field: str) -> str:
    """``source`` when it has at most MAX_SOURCE characters."""
    if len(source) > MAX_SOURCE:
        raise InvalidInputError(f"{field}: got {len(source)} characters, expected at most {MAX_SOURCE}.",
                                field=field, value=source[:60] + "...", expected=f"at most {MAX_SOURCE} characters")
    return source
