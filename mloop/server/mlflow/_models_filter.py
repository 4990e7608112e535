"""MLflow's registry search filters (``name LIKE 'eta%' AND tags.team = 'ml'``) and page tokens.

The registry's searches run over a few thousand models at most, so a filter is parsed once into predicates and
applied to the rows in Python. The grammar is MLflow's for the registry: clauses joined by AND, each
``<field> <op> <value>`` with ``=``, ``!=``, ``LIKE``, ``ILIKE`` or ``IN ('a', 'b')``; values in quotes
(numbers bare for ``version_number``).

>>> check = parse("name LIKE 'eta%' AND tags.team = 'ml'", {"name"})
>>> check({"name": "eta-v2", "tags.team": "ml"}), check({"name": "eta-v2", "tags.team": "ops"})
(True, False)
>>> parse("tag.`mlflow.prompt.is_prompt` != 'true'", {"name"})({"name": "eta"})
True
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from mloop.server.mlflow._protocol import MlflowError

_CLAUSE = re.compile(
    r"""\s*(?P<field>(?:tags?\.)?(?:`[^`]+`|[\w.]+))\s*(?P<op>!=|=|<=|>=|<|>|\bNOT\s+IN\b|\bIN\b|\bI?LIKE\b)\s*"""
    r"""(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+|\((?:\s*(?:'[^']*'|"[^"]*"|\d+)\s*,?)+\))\s*""",
    re.IGNORECASE)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
MAX_FILTER = 10_000


def parse(text: str | None, fields: set[str]) -> Callable[[dict[str, Any]], bool]:
    """A predicate over a row (``{field: value, 'tags.<key>': value}``) for the filter ``text``."""
    checks = [_clause(part, fields) for part in _split(text or "")]
    return lambda row: all(check(row) for check in checks)


def _split(text: str) -> list[str]:
    if len(text) > MAX_FILTER:
        raise MlflowError(f"filter: longer than {MAX_FILTER} characters.")
    parts, current = [], ""
    for piece in re.split(r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", text):  # never split inside a quote
        if piece.startswith(("'", '"')):
            current += piece
            continue
        chunks = _AND.split(piece)
        current += chunks[0]
        for chunk in chunks[1:]:
            parts.append(current)
            current = chunk
    parts.append(current)
    return [p for p in (p.strip() for p in parts) if p]


def _clause(text: str, fields: set[str]) -> Callable[[dict[str, Any]], bool]:
    match = _CLAUSE.fullmatch(text)
    if match is None:
        raise MlflowError(f"filter: cannot read '{text[:200]}'; expected <field> <op> '<value>' clauses joined "
                          "by AND, with op one of =, !=, LIKE, ILIKE, IN.")
    field = re.sub(r"^tags?\.", "tags.", match["field"]).replace("`", "")  # MLflow takes tag. and tags.
    if field not in fields and not field.startswith("tags."):
        raise MlflowError(f"filter: '{field}' is not a field of this search; expected one of "
                          f"{sorted(fields)} or tags.<key>.")
    op, value = re.sub(r"\s+", " ", match["op"].upper()), match["value"]
    if op in ("IN", "NOT IN"):
        values = {v.strip("'\"") for v in re.findall(r"'[^']*'|\"[^\"]*\"|\d+", value)}
        return lambda row: (str(row.get(field)) in values) == (op == "IN")
    literal = _unquote(value)
    if op in ("LIKE", "ILIKE"):
        flags = re.IGNORECASE if op == "ILIKE" else 0
        pattern = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in literal),
                             flags | re.DOTALL)
        return lambda row: row.get(field) is not None and pattern.fullmatch(str(row[field])) is not None
    return _compare(field, op, literal)


def _compare(field: str, op: str, literal: str) -> Callable[[dict[str, Any]], bool]:
    def check(row: dict[str, Any]) -> bool:
        found = row.get(field)
        if found is None:
            return op == "!="
        left, right = (found, int(literal)) if isinstance(found, int) and literal.lstrip("-").isdigit() \
            else (str(found), literal)
        return {"=": left == right, "!=": left != right, "<": left < right, ">": left > right,
                "<=": left <= right, ">=": left >= right}[op]  # type: ignore[operator]

    return check


def _unquote(value: str) -> str:
    if value[:1] in ("'", '"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def page(rows: list[Any], token: str | None, max_results: int) -> tuple[list[Any], str | None]:
    """One page of ``rows`` and the token of the next (None at the end)."""
    start = offset_of(token)
    end = start + max_results
    return rows[start:end], (token_of(end) if end < len(rows) else None)


def token_of(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_of(token: str | None) -> int:
    """The offset a page token carries (INVALID_PARAMETER_VALUE for one this server did not give out)."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise MlflowError(f"page_token: '{token[:100]}' is not a page token this server gave out.")
    return offset
