"""Compile a parsed filter and order into one SELECT over runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, not_, or_, select, true

from mloop.errors import InvalidInputError
from mloop.tracking import _tables as t
from mloop.tracking.entities import Lifecycle
from mloop.tracking.search import And, Compare, Not, Or, OrderKey, parse, parse_order_by

_NUMERIC_ATTRS = {"start_time", "end_time"}


def build_search(experiment_ids: list[int], filter: str, order_by: list[str] | str | None, limit: int | None,
                 include_deleted: bool) -> tuple[Select[Any], ColumnElement[bool]]:
    """The runs query and its WHERE clause (reused to fetch params, metrics and tags of the same runs)."""
    where: ColumnElement[bool] = t.runs.c.experiment_id.in_(experiment_ids) if experiment_ids else true()
    if not include_deleted:
        where = and_(where, t.runs.c.lifecycle_stage == Lifecycle.ACTIVE)
    tree = parse(filter)
    if tree is not None:
        where = and_(where, _compile(tree))
    query = select(t.runs).where(where)
    for key in parse_order_by(order_by):
        column = _order_column(key)
        query = query.order_by(column.desc().nulls_last() if key.descending else column.asc().nulls_last())
    query = query.order_by(t.runs.c.start_time.desc(), t.runs.c.run_id)
    if limit is not None:
        query = query.limit(limit)
    return query, where


def _compile(node: Any) -> ColumnElement[bool]:
    if isinstance(node, And):
        return and_(*(_compile(n) for n in node.items))
    if isinstance(node, Or):
        return or_(*(_compile(n) for n in node.items))
    if isinstance(node, Not):
        return not_(_compile(node.item))
    return _compare(node)


def _compare(c: Compare) -> ColumnElement[bool]:
    if c.kind == "attributes":
        column = t.runs.c[c.key]
        value = c.value
        if c.key == "experiment_id":
            value = tuple(int(v) for v in value) if isinstance(value, tuple) else int(value)
        elif c.key not in _NUMERIC_ATTRS:
            value = tuple(str(v) for v in value) if isinstance(value, tuple) else str(value)
        return _apply(column, c.op, value, c)
    if c.kind == "metrics":
        lm = t.latest_metrics
        _need_number(c)
        inner = select(lm.c.run_id).where(lm.c.key == c.key, _apply(lm.c.value, c.op, c.value, c))
        return t.runs.c.run_id.in_(inner)
    if c.kind == "params":
        p = t.params
        numeric = isinstance(c.value, int | float) and not isinstance(c.value, bool) or (
            isinstance(c.value, tuple) and all(isinstance(v, int | float) for v in c.value))
        if numeric and c.op not in ("LIKE", "ILIKE"):
            cond = _apply(p.c.num, c.op, c.value, c)
        else:
            value = tuple(_text(v) for v in c.value) if isinstance(c.value, tuple) else _text(c.value)
            cond = _apply(p.c.value, c.op, value, c)
        return t.runs.c.run_id.in_(select(p.c.run_id).where(p.c.key == c.key, cond))
    tg = t.tags
    value = tuple(str(v) for v in c.value) if isinstance(c.value, tuple) else str(c.value)
    return t.runs.c.run_id.in_(select(tg.c.run_id).where(tg.c.key == c.key, _apply(tg.c.value, c.op, value, c)))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _need_number(c: Compare) -> None:
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    if c.op in ("LIKE", "ILIKE") or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise InvalidInputError(field="filter", value=f"metrics.{c.key} {c.op} {c.value!r}",
                                expected="metrics compared with numbers (= != < <= > >= IN)")


def _apply(column: Any, op: str, value: Any, c: Compare) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        return column.like(value)
    if op == "ILIKE":
        return column.ilike(value)
    if op == "IN":
        return column.in_(value) if value else false()
    if op == "NOT IN":
        return column.not_in(value) if value else true()
    raise InvalidInputError(field="filter", value=op, expected="= != < <= > >= LIKE ILIKE IN")  # pragma: no cover


def _order_column(key: OrderKey) -> Any:
    if key.kind == "attributes":
        return t.runs.c[key.key]
    if key.kind == "metrics":
        lm = t.latest_metrics
        return select(lm.c.value).where(lm.c.run_id == t.runs.c.run_id, lm.c.key == key.key).scalar_subquery()
    if key.kind == "params":
        p = t.params
        return select(p.c.num).where(p.c.run_id == t.runs.c.run_id, p.c.key == key.key).scalar_subquery()
    tg = t.tags
    return select(tg.c.value).where(tg.c.run_id == t.runs.c.run_id, tg.c.key == key.key).scalar_subquery()
