"""The predicate language of selection rules, parsed by a small recursive-descent parser (never eval'd).

    name = 'eta' and tags.city in ('sf', 'nyc')
    metrics.mae <= 5 and metrics.bias between -0.1 and 0.1 and not tags.flaky = 'true'

A syntax error says where it is, with a caret under the position.

>>> parse("metrics.mae <= 5 and metrics.bias between -0.1 and 0.1")
All(items=(Cmp(field='metrics.mae', op='<=', value=5), Between(field='metrics.bias', low=-0.1, high=0.1)))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mloop._util.nesting import Nesting, check_source
from mloop.errors import InvalidInputError

__all__ = ["All", "Any_", "Between", "Cmp", "In", "Neg", "Null", "fields_of", "parse"]

# Fields a rule can name: version attributes, and any tags.<key>, metrics.<key> or analysis.<key>.
ATTRIBUTES = ("name", "version", "status", "flavor", "run_id", "creator", "created", "description")
# analysis.<key>: a number of the model analysis stored with the version (mloop.analysis), such as
# analysis.worst_slice_gap or analysis.equalized_odds_difference.
NUMERIC_PREFIXES = ("metrics", "analysis")
_SCAN = re.compile(r"""
    (?P<space>\s+)
  | (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-/:]+|\.`[^`]+`)?)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "in", "between", "is", "null", "true", "false", "like"}


@dataclass(frozen=True, slots=True)
class Cmp:
    field: str
    op: str  # = != < <= > >= like
    value: Any


@dataclass(frozen=True, slots=True)
class Between:
    field: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class In:
    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Null:
    field: str


@dataclass(frozen=True, slots=True)
class Neg:
    item: Any


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Any_:
    items: tuple[Any, ...]


def syntax_error(source: str, pos: int, what: str, section: str) -> InvalidInputError:
    """An InvalidInputError that points at ``pos`` in ``source``."""
    return InvalidInputError(f"Syntax error in '{section}' at position {pos}: {what}\n  {source}\n  {' ' * pos}^",
                             field=section, value=source,
                             expected="e.g. metrics.mae <= 5 and metrics.bias between -0.1 and 0.1")


def _scan(source: str, section: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(source):
        m = _SCAN.match(source, pos)
        if m is None:
            raise syntax_error(source, pos, f"unexpected character {source[pos]!r}", section)
        kind = m.lastgroup or ""
        if kind != "space":
            text = m.group()
            if kind == "name" and text.lower() in _KEYWORDS:
                kind, text = "kw", text.lower()
            tokens.append((kind, text, pos))
        pos = m.end()
    tokens.append(("end", "", len(source)))
    return tokens


class _Parser:
    def __init__(self, source: str, section: str) -> None:
        self.source, self.section = source, section
        self.tokens = _scan(source, section)
        self.i = 0
        self.nesting = Nesting(lambda what: syntax_error(source, self.tokens[self.i][2], what, section))

    def peek(self, kind: str, text: str | None = None) -> bool:
        k, t, _ = self.tokens[self.i]
        return k == kind and (text is None or t == text)

    def take(self, kind: str, text: str | None, what: str) -> tuple[str, str, int]:
        if not self.peek(kind, text):
            k, t, pos = self.tokens[self.i]
            raise syntax_error(self.source, pos, f"expected {what}, found {'the end' if k == 'end' else repr(t)}",
                               self.section)
        self.i += 1
        return self.tokens[self.i - 1]

    def expression(self) -> Any:
        node = self.disjunction()
        self.take("end", None, "AND, OR or the end of the expression")
        return node

    def disjunction(self) -> Any:
        items = [self.conjunction()]
        while self.peek("kw", "or"):
            self.i += 1
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Any_(tuple(items))

    def conjunction(self) -> Any:
        items = [self.unary()]
        while self.peek("kw", "and"):
            self.i += 1
            items.append(self.unary())
        return items[0] if len(items) == 1 else All(tuple(items))

    def unary(self) -> Any:
        if self.peek("kw", "not"):
            with self.nesting:
                self.i += 1
                return Neg(self.unary())
        if self.peek("punct", "("):
            with self.nesting:
                self.i += 1
                node = self.disjunction()
                self.take("punct", ")", "')'")
                return node
        return self.predicate()

    def predicate(self) -> Any:
        _, text, pos = self.take("name", None, "a field such as metrics.mae, tags.city, name or version")
        field = _field(text, pos, self)
        negate = False
        if self.peek("kw", "not"):
            self.i += 1
            negate = True
            if not (self.peek("kw", "in") or self.peek("kw", "between") or self.peek("kw", "like")):
                self.take("kw", "in", "IN, BETWEEN or LIKE after NOT")
        node = self._test(field)
        return Neg(node) if negate else node

    def _test(self, field: str) -> Any:
        if self.peek("kw", "between"):
            self.i += 1
            low = self.number()
            self.take("kw", "and", "AND between the two bounds")
            return Between(field, low, self.number())
        if self.peek("kw", "in"):
            self.i += 1
            self.take("punct", "(", "'(' to open the list")
            values = [self.value_for(field)]
            while self.peek("punct", ","):
                self.i += 1
                values.append(self.value_for(field))
            self.take("punct", ")", "')' to close the list")
            return In(field, tuple(values))
        if self.peek("kw", "is"):
            self.i += 1
            negate = self.peek("kw", "not")
            self.i += negate
            self.take("kw", "null", "NULL")
            return Neg(Null(field)) if negate else Null(field)
        if self.peek("kw", "like"):
            self.i += 1
            return Cmp(field, "like", self.string())
        _, op, _ = self.take("op", None, "an operator (= != < <= > >= BETWEEN IN LIKE IS NULL)")
        return Cmp(field, {"==": "=", "<>": "!="}.get(op, op), self.value_for(field))

    def value_for(self, field: str) -> Any:
        """A value to compare ``field`` with; metrics are numbers, so they only compare with numbers."""
        _, text, pos = self.tokens[self.i]
        value = self.value()
        numeric = field.split(".", 1)[0] in NUMERIC_PREFIXES
        if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise syntax_error(self.source, pos, f"{field} is a number and cannot be compared with {text}",
                               self.section)
        return value

    def value(self) -> Any:
        kind, text, pos = self.tokens[self.i]
        if kind == "num":
            return self.number()
        if kind == "str":
            return self.string()
        if kind == "kw" and text in ("true", "false"):
            self.i += 1
            return text == "true"
        raise syntax_error(self.source, pos, f"expected a number or a quoted string, found "
                                             f"{'the end' if kind == 'end' else repr(text)}", self.section)

    def number(self) -> Any:
        _, text, _ = self.take("num", None, "a number")
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)

    def string(self) -> str:
        _, text, _ = self.take("str", None, "a quoted string")
        return re.sub(r"\\(.)", r"\1", text[1:-1])


def _field(text: str, pos: int, parser: _Parser) -> str:
    if "." in text:
        prefix, key = text.split(".", 1)
        prefix = {"metric": "metrics", "tag": "tags"}.get(prefix.lower(), prefix.lower())
        if prefix not in NUMERIC_PREFIXES + ("tags",):
            raise syntax_error(parser.source, pos, f"unknown prefix {prefix!r}; use metrics.<key>, tags.<key> or "
                                                   "analysis.<key>", parser.section)
        return f"{prefix}.{key.strip('`')}"
    if text not in ATTRIBUTES:
        raise syntax_error(parser.source, pos, f"unknown field {text!r}; use metrics.<key>, tags.<key> or one of "
                                               f"{', '.join(ATTRIBUTES)}", parser.section)
    return text


def parse(source: str | None, section: str = "when") -> Any:
    """The expression tree of ``source`` (None when it is empty)."""
    if source is None or (isinstance(source, str) and not source.strip()):
        return None
    if not isinstance(source, str):
        raise InvalidInputError(field=section, value=source, expected="an expression string")
    return _Parser(check_source(source, section), section).expression()


def fields_of(node: Any) -> set[str]:
    """Every field an expression names."""
    if node is None:
        return set()
    if isinstance(node, All | Any_):
        return set().union(*(fields_of(i) for i in node.items))
    if isinstance(node, Neg):
        return fields_of(node.item)
    return {node.field}
