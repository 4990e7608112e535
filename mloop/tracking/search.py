"""The run filter language, parsed (never eval'd) and compiled to SQL.

    metrics.rmse < 4 and params.lr = 0.1
    (tags.team = 'eta' or tags.team ILIKE 'maps%') and not status = 'failed'
    params.model IN ('ridge', 'forest') and attributes.start_time > 1700000000000

>>> parse("metrics.rmse < 4 and params.lr = 0.1")
And(items=(Compare(kind='metrics', key='rmse', op='<', value=4), Compare(kind='params', key='lr', op='=', value=0.1)))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mloop._util.nesting import Nesting, check_source
from mloop.errors import InvalidInputError

__all__ = ["And", "Compare", "Not", "Or", "OrderKey", "parse", "parse_order_by"]

KINDS = {
    "metrics": "metrics", "metric": "metrics",
    "params": "params", "param": "params",
    "tags": "tags", "tag": "tags",
    "attributes": "attributes", "attribute": "attributes", "attr": "attributes", "run": "attributes",
}
ATTRIBUTES = {
    "run_id", "experiment_id", "name", "run_name", "status", "user", "user_id", "description",
    "start_time", "end_time", "parent_run_id", "lifecycle_stage", "artifact_uri",
}
_OPS = ("<=", ">=", "!=", "<>", "=", "==", "<", ">")
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)(?![A-Za-z_]))
    | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<ident>(?:[A-Za-z_][A-Za-z0-9_]*)(?:\.(?:`[^`]+`|"[^"]+"|[A-Za-z0-9_\-/:.]+))?)
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_WORDS = {"and", "or", "not", "in", "like", "ilike", "null", "is", "true", "false"}


@dataclass(frozen=True, slots=True)
class Compare:
    kind: str  # metrics | params | tags | attributes
    key: str
    op: str  # = != < <= > >= LIKE ILIKE IN NOT IN
    value: Any


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Any


@dataclass(frozen=True, slots=True)
class OrderKey:
    kind: str
    key: str
    descending: bool


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _error(source: str, pos: int, what: str) -> InvalidInputError:
    pointer = " " * pos + "^"
    return InvalidInputError(
        f"Invalid filter at position {pos}: {what}\n  {source}\n  {pointer}",
        field="filter", value=source, expected="e.g. \"metrics.rmse < 4 and params.lr = 0.1\"",
    )


def _tokenize(source: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        m = _TOKEN.match(source, pos)
        if not m or m.end() == pos:
            start = pos + (len(source[pos:]) - len(source[pos:].lstrip()))
            raise _error(source, start, f"unexpected character {source[start]!r}")
        kind = m.lastgroup or ""
        text = m.group(kind)
        start = m.start(kind)
        if kind == "ident" and text.lower() in _WORDS:
            kind = "word"
        tokens.append(_Tok(kind, text, start))
        pos = m.end()
    tokens.append(_Tok("end", "", len(source)))
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.i = 0
        self.nesting = Nesting(lambda what: _error(self.source, self.tok.pos, what))

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def _word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.lower() in words

    def _take(self) -> _Tok:
        tok = self.tok
        self.i += 1
        return tok

    def _expect(self, kind: str, text: str | None, what: str) -> _Tok:
        tok = self.tok
        if tok.kind != kind or (text is not None and tok.text.lower() != text):
            found = "the end of the filter" if tok.kind == "end" else repr(tok.text)
            raise _error(self.source, tok.pos, f"expected {what}, found {found}")
        return self._take()

    def parse(self) -> Any:
        node = self._or()
        if self.tok.kind != "end":
            raise _error(self.source, self.tok.pos, f"unexpected {self.tok.text!r}; expected AND, OR or the end")
        return node

    def _or(self) -> Any:
        items = [self._and()]
        while self._word("or"):
            self._take()
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Any:
        items = [self._not()]
        while self._word("and"):
            self._take()
            items.append(self._not())
        return items[0] if len(items) == 1 else And(tuple(items))

    def _not(self) -> Any:
        if self._word("not"):
            with self.nesting:
                self._take()
                return Not(self._not())
        if self.tok.kind == "punct" and self.tok.text == "(":
            with self.nesting:
                self._take()
                node = self._or()
                self._expect("punct", ")", "')'")
                return node
        return self._comparison()

    def _comparison(self) -> Compare:
        ident = self._expect("ident", None, "a name such as metrics.rmse, params.lr, tags.team or status")
        kind, key = _split_ident(self.source, ident)
        if self._word("not"):
            self._take()
            self._expect("word", "in", "IN after NOT")
            return Compare(kind, key, "NOT IN", self._list())
        if self._word("in"):
            self._take()
            return Compare(kind, key, "IN", self._list())
        if self._word("like", "ilike"):
            op = self._take().text.upper()
            value = self._value()
            if not isinstance(value, str):
                raise _error(self.source, self.tokens[self.i - 1].pos, f"{op} needs a quoted pattern")
            return Compare(kind, key, op, value)
        tok = self._expect("op", None, "an operator (= != < <= > >= LIKE ILIKE IN)")
        op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        return Compare(kind, key, op, self._value())

    def _list(self) -> tuple[Any, ...]:
        self._expect("punct", "(", "'(' to open the list")
        values = [self._value()]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self._take()
            values.append(self._value())
        self._expect("punct", ")", "')' to close the list")
        return tuple(values)

    def _value(self) -> Any:
        tok = self.tok
        if tok.kind == "num":
            self._take()
            number = float(tok.text)
            return int(number) if number.is_integer() and re.fullmatch(r"[-+]?\d+", tok.text) else number
        if tok.kind == "str":
            self._take()
            body = tok.text[1:-1]
            if "\x00" in body:  # PostgreSQL cannot compare text holding NUL; no stored value holds one
                raise _error(self.source, tok.pos, "a NUL (\\x00) character in a quoted value")
            return body.replace("''", "'").replace("\\'", "'").replace('\\"', '"')
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            self._take()
            return tok.text.lower() == "true"
        found = "the end of the filter" if tok.kind == "end" else repr(tok.text)
        raise _error(self.source, tok.pos, f"expected a number or a quoted string, found {found}")


def _split_ident(source: str, tok: _Tok) -> tuple[str, str]:
    if "." not in tok.text:
        name = tok.text
        if name not in ATTRIBUTES:
            raise _error(source, tok.pos, f"unknown name {name!r}; use metrics.<key>, params.<key>, tags.<key> "
                                          f"or an attribute ({', '.join(sorted(ATTRIBUTES))})")
        return "attributes", _attr(name)
    prefix, key = tok.text.split(".", 1)
    kind = KINDS.get(prefix.lower())
    if kind is None:
        raise _error(source, tok.pos, f"unknown prefix {prefix!r}; expected metrics., params., tags. or attributes.")
    if key[:1] in "`\"" and key[-1:] == key[:1]:
        key = key[1:-1]
    if kind == "attributes":
        if key not in ATTRIBUTES:
            raise _error(source, tok.pos, f"unknown attribute {key!r}; expected one of {sorted(ATTRIBUTES)}")
        key = _attr(key)
    return kind, key


def _attr(name: str) -> str:
    return {"run_name": "name", "user_id": "user"}.get(name, name)  # MLflow's names for the same attributes


def parse(source: str) -> Any:
    """Parse a filter string into an AST of Compare / And / Or / Not (None for an empty filter)."""
    if source is None or not str(source).strip():
        return None
    if not isinstance(source, str):
        raise InvalidInputError(field="filter", value=source, expected="a filter string")
    return _Parser(check_source(source, "filter")).parse()


def parse_order_by(items: list[str] | str | None) -> list[OrderKey]:
    """Parse ``["metrics.rmse", "params.lr DESC"]`` into order keys."""
    if not items:
        return []
    if isinstance(items, str):
        items = [items]
    keys = []
    for item in items:
        parts = str(item).strip().rsplit(None, 1)
        descending = False
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            descending = parts[1].upper() == "DESC"
            item = parts[0]
        tokens = _tokenize(str(item))
        if len(tokens) != 2 or tokens[0].kind != "ident":
            raise InvalidInputError(field="order_by", value=item,
                                    expected="a name like 'metrics.rmse' optionally followed by ASC or DESC")
        kind, key = _split_ident(str(item), tokens[0])
        keys.append(OrderKey(kind, key, descending))
    return keys
