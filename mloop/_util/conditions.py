"""A small condition language: comparisons, arithmetic between fields, and/or/not; parsed by a small
recursive-descent parser into a tree that is evaluated over a dict of values (never eval'd). Automation rules'
``when`` and monitors' declared segments are written in it.

    drift.share > 0.3 or live.mae > 1.2 * train.mae

A field that the event does not carry makes its comparison false (and the explanation says which field).

>>> cond = parse_when("drift.share > 0.3 or live.mae > 1.2 * train.mae")
>>> cond.evaluate({"drift.share": 0.1, "live.mae": 5.0, "train.mae": 4.0})
True
>>> cond.fields()
['drift.share', 'live.mae', 'train.mae']
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from mloop._util.nesting import Nesting, check_source
from mloop.errors import InvalidInputError

__all__ = ["COMPARE", "Condition", "Node", "parse_when"]

_SCAN = re.compile(r"""
    (?P<space>\s+)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>'[^'\\]*'|"[^"\\]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-]+)*)
  | (?P<cmp><=|>=|!=|==|=|<|>)
  | (?P<arith>[-+*/])
  | (?P<punct>[()])
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "true", "false"}
COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq,
            "==": operator.eq, "!=": operator.ne}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


class _Missing(Exception):
    """A field the values do not carry: the comparison that needs it is false."""


@dataclass(frozen=True, slots=True)
class Node:
    kind: str  # num str field bool neg arith cmp and or not
    value: Any = None
    items: tuple[Any, ...] = ()


class Condition:
    """A parsed ``when``: ``evaluate(values)`` -> bool, ``explain(values)`` -> why, ``fields()``."""

    def __init__(self, source: str, tree: Node | None) -> None:
        self.source, self.tree = source, tree

    def evaluate(self, values: dict[str, Any]) -> bool:
        return True if self.tree is None else bool(_truth(self.tree, values))

    def fields(self) -> list[str]:
        found: set[str] = set()
        _collect(self.tree, found)
        return sorted(found)

    def explain(self, values: dict[str, Any]) -> str:
        """The condition with each field's value, e.g. ``drift.share=0.41 > 0.3``; missing fields say so."""
        if self.tree is None:
            return "no condition (always)"
        shown = ", ".join(f"{f}={values[f]!r}" if f in values else f"{f} is missing" for f in self.fields())
        verdict = "true" if self.evaluate(values) else "false"
        return f"{self.source} is {verdict} ({shown})"


def _collect(node: Node | None, found: set[str]) -> None:
    if node is None:
        return
    if node.kind == "field":
        found.add(node.value)
    for item in node.items:
        _collect(item, found)


def _value(node: Node, values: dict[str, Any]) -> Any:
    if node.kind in ("num", "str", "bool"):
        return node.value
    if node.kind == "field":
        if values.get(node.value) is None:
            raise _Missing(node.value)
        return values[node.value]
    if node.kind == "neg":
        return -_number(_value(node.items[0], values))
    if node.kind == "arith":
        left, right = (_number(_value(i, values)) for i in node.items)
        if node.value == "/" and right == 0:
            raise _Missing("division by zero")
        return _ARITH[node.value](left, right)
    return _truth(node, values)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Missing(f"{value!r} is not a number")
    return value


def _truth(node: Node, values: dict[str, Any]) -> bool:
    if node.kind == "and":
        return all(_truth(i, values) for i in node.items)
    if node.kind == "or":
        return any(_truth(i, values) for i in node.items)
    if node.kind == "not":
        return not _truth(node.items[0], values)
    try:
        if node.kind == "cmp":
            left, right = (_value(i, values) for i in node.items)
            return bool(COMPARE[node.value](left, right))
        return bool(_value(node, values))
    except (_Missing, TypeError):
        return False


def _error(source: str, pos: int, what: str) -> InvalidInputError:
    return InvalidInputError(f"Syntax error in 'when' at position {pos}: {what}\n  {source}\n  {' ' * pos}^",
                             field="when", value=source,
                             expected="e.g. drift.share > 0.3 or live.mae > 1.2 * train.mae")


def _scan(source: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(source):
        m = _SCAN.match(source, pos)
        if m is None:
            raise _error(source, pos, f"unexpected character {source[pos]!r}")
        kind, text = m.lastgroup or "", m.group()
        if kind != "space":
            if kind == "name" and text.lower() in _KEYWORDS:
                kind, text = "kw", text.lower()
            tokens.append((kind, text, pos))
        pos = m.end()
    return [*tokens, ("end", "", len(source))]


class _Parser:
    def __init__(self, source: str) -> None:
        self.source, self.tokens, self.i = source, _scan(source), 0
        self.nesting = Nesting(lambda what: _error(source, self.tokens[self.i][2], what))

    def peek(self, kind: str, *texts: str) -> bool:
        k, t, _ = self.tokens[self.i]
        return k == kind and (not texts or t in texts)

    def take(self, kind: str, what: str) -> tuple[str, str, int]:
        if not self.peek(kind):
            k, t, pos = self.tokens[self.i]
            raise _error(self.source, pos, f"expected {what}, found {'the end' if k == 'end' else repr(t)}")
        self.i += 1
        return self.tokens[self.i - 1]

    def chain(self, kind: str, texts: tuple[str, ...], inner: Any, build: Any) -> Node:
        node = inner()
        while self.peek(kind, *texts):
            op = self.tokens[self.i][1]
            self.i += 1
            node = build(op, node, inner())
        return node

    def disjunction(self) -> Node:
        return self.chain("kw", ("or",), self.conjunction, lambda _, a, b: Node("or", items=(a, b)))

    def conjunction(self) -> Node:
        return self.chain("kw", ("and",), self.negation, lambda _, a, b: Node("and", items=(a, b)))

    def negation(self) -> Node:
        if self.peek("kw", "not"):
            with self.nesting:
                self.i += 1
                return Node("not", items=(self.negation(),))
        left = self.sum()
        if self.peek("cmp"):
            op = self.tokens[self.i][1]
            self.i += 1
            return Node("cmp", op, (left, self.sum()))
        return left

    def sum(self) -> Node:
        return self.chain("arith", ("+", "-"), self.product, lambda op, a, b: Node("arith", op, (a, b)))

    def product(self) -> Node:
        return self.chain("arith", ("*", "/"), self.atom, lambda op, a, b: Node("arith", op, (a, b)))

    def atom(self) -> Node:
        kind, text, _ = self.tokens[self.i]
        if kind == "arith" and text == "-":
            with self.nesting:
                self.i += 1
                return Node("neg", items=(self.atom(),))
        if kind == "punct" and text == "(":
            with self.nesting:
                self.i += 1
                node = self.disjunction()
                self.take("punct", "')'")
                return node
        if kind in ("num", "str", "name") or (kind == "kw" and text in ("true", "false")):
            self.i += 1
            if kind == "num":
                return Node("num", float(text) if any(c in text for c in ".eE") else int(text))
            if kind == "str":
                return Node("str", text[1:-1])
            return Node("field", text) if kind == "name" else Node("bool", text == "true")
        self.take("name", "a field such as drift.share, a number or '('")
        raise AssertionError  # take raised


def parse_when(source: str | None) -> Condition:
    """Parse a rule's ``when``; an empty one always holds. Raises InvalidInputError pointing at the mistake."""
    if source is None or (isinstance(source, str) and not source.strip()):
        return Condition("", None)
    if not isinstance(source, str):
        raise InvalidInputError(field="when", value=source, expected="a condition as text")
    check_source(source, "when")
    parser = _Parser(source)
    tree = parser.disjunction()
    parser.take("end", "AND, OR, an operator or the end of the condition")
    return Condition(source, tree)
