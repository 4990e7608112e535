"""The reads a person browsing runs needs: one page of a runs table, and one window of a metric for a chart.

Both answer from the database in a bounded number of statements whatever the number of runs or points, so a
table over 10,000 runs or a chart over 1,000,000 points stays quick to show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from mloop.errors import InvalidInputError
from mloop.tracking import _tables as t
from mloop.tracking._query import build_search
from mloop.tracking._sql import SqlTrackingRepository, _children, _experiment_int
from mloop.tracking._values import decode_param
from mloop.tracking.entities import Lifecycle, Metric

MAX_PAGE = 1000  # runs per page: a screen shows tens; a page is also what the compare view may ask at once
MAX_KEYS = 2000  # column keys listed for the chooser: a run logging more is shown, its keys are not all offered
# tags the runs table leaves out: environment records too long for a cell (the run page shows them)
HIDDEN_TAGS = ("mloop.libraries", "mloop.command", "mloop.source", "mloop.pid", "mloop.host", "mloop.python")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunsPage:
    """``runs`` (attributes, params, metrics, tags, ``children`` count), ``total`` matching, and the column keys
    of every matching run (not only this page's), for the column chooser."""

    total: int
    offset: int
    runs: list[dict[str, Any]]
    columns: dict[str, list[str]] = field(default_factory=dict)


def runs_page(repo: SqlTrackingRepository, experiment_ids: list[str], filter: str = "",
              order_by: list[str] | None = None, offset: int = 0, limit: int = 50,
              parent_run_id: str | None = None, roots_only: bool = False, with_columns: bool = True) -> RunsPage:
    """One page of the runs that match ``filter``: the top-level ones (``roots_only``: no parent among the runs
    shown), the children of ``parent_run_id``, or all of them. ``with_columns=False`` skips listing the column
    keys of every matching run (a page that only counts, or turns, needs none).

    >>> runs_page(repo, ["1"], "metrics.rmse < 4 or params.lr = 0.1", ["metrics.rmse"], 0, 50).total  # doctest: +SKIP
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(field="limit", value=limit, expected=f"a whole number from 1 to {MAX_PAGE}")
    if offset < 0:
        raise InvalidInputError(field="offset", value=offset, expected="a whole number >= 0")
    experiments = [_experiment_int(e) for e in experiment_ids]
    query, where = build_search(experiments, filter, order_by, None, False)
    if parent_run_id is not None or roots_only:
        placed = t.runs.c.parent_run_id == parent_run_id if parent_run_id else _top_level(experiments)
        where, query = and_(where, placed), query.where(placed)
    query = query.limit(limit).offset(offset)
    repo._reap_dead_runs()
    with repo.db.read() as conn:
        total = conn.execute(select(func.count()).select_from(t.runs).where(where)).scalar_one()
        rows = conn.execute(query).all()
        ids = [r.run_id for r in rows]
        runs = _page_rows(conn, rows, ids)
        columns = _column_keys(conn, select(t.runs.c.run_id).where(where)) if total and with_columns else {}
    return RunsPage(total=total, offset=offset, runs=runs, columns=columns)


def _top_level(experiments: list[int]) -> Any:
    """Runs with no parent among the active runs shown: a flow's runs keep their tasks as parents in the flow's
    own experiment, and would otherwise be folded under a run that is not on the page."""
    parents = t.runs.alias("parents")
    # NOT EXISTS looks the one parent up by its key; NOT IN would list every run of the experiments per query
    shown = select(parents.c.run_id).where(parents.c.run_id == t.runs.c.parent_run_id,
                                           parents.c.lifecycle_stage == Lifecycle.ACTIVE)
    if experiments:
        shown = shown.where(parents.c.experiment_id.in_(experiments))
    return or_(t.runs.c.parent_run_id.is_(None), ~shown.exists())


def _page_rows(conn: Connection, rows: list[Any], ids: list[str]) -> list[dict[str, Any]]:
    runs = {r.run_id: {"run_id": r.run_id, "experiment_id": str(r.experiment_id), "name": r.name,
                       "status": r.status, "user": r.user, "start_time": r.start_time, "end_time": r.end_time,
                       "parent_run_id": r.parent_run_id, "children": 0, "params": {}, "metrics": {}, "tags": {}}
            for r in rows}
    if not ids:
        return []
    for run_id, key, value, vtype in _children(conn, t.params, ids, ids, t.params.c.key, t.params.c.value,
                                                t.params.c.vtype):
        runs[run_id]["params"][key] = _json_safe(decode_param(value, vtype))
    for run_id, key, value in _children(conn, t.latest_metrics, ids, ids, t.latest_metrics.c.key,
                                        t.latest_metrics.c.value):
        runs[run_id]["metrics"][key] = _number_out(value)
    for run_id, key, value in _children(conn, t.tags, ids, ids, t.tags.c.key, t.tags.c.value):
        if key not in HIDDEN_TAGS:
            runs[run_id]["tags"][key] = value
    counted = select(t.runs.c.parent_run_id, func.count()).where(t.runs.c.parent_run_id.in_(ids)).group_by(
        t.runs.c.parent_run_id)
    for parent, count in conn.execute(counted):
        runs[parent]["children"] = count
    return [runs[i] for i in ids]


def _column_keys(conn: Connection, scope: Any) -> dict[str, list[str]]:
    def keys(table: Any) -> list[str]:
        query = select(table.c.key).where(table.c.run_id.in_(scope)).distinct().order_by(table.c.key).limit(MAX_KEYS)
        return [k for (k,) in conn.execute(query)]

    return {"params": keys(t.params), "metrics": keys(t.latest_metrics),
            "tags": [k for k in keys(t.tags) if k not in HIDDEN_TAGS]}


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricWindow:
    """The points of one metric between two steps, downsampled to at most ``max_points``; ``total`` counts the
    points in the window before downsampling, and ``first_step``/``last_step`` bound the whole series."""

    key: str
    total: int | None  # None for a sample: counting would read the whole window
    points: list[Metric]
    first_step: int | None
    last_step: int | None


def metric_window(repo: SqlTrackingRepository, run_id: str, key: str, start: int | None = None,
                  end: int | None = None, max_points: int = 2000, sample: bool = False) -> MetricWindow:
    """The points of ``key`` with ``start <= step <= end``, at most ``max_points`` of them.

    ``sample`` answers at once, whatever the window's length, with the first point at or after each of
    ``max_points`` evenly spaced steps (one index lookup each): a preview to draw while the exact summary is
    computed, which may miss a spike.

    A window holding more points is summarized in the database, not in Python: its steps are cut into
    ``max_points / 2`` equal buckets and each bucket answers its lowest and its highest value (at the bucket's
    first and last step), so a spike survives however long the series; one statement reads each point once.

    >>> metric_window(repo, run_id, "loss", 1000, 2000, 500).total  # doctest: +SKIP
    """
    p = "%s" if repo.db.dialect == "postgresql" else "?"
    series = f"FROM metrics WHERE run_id = {p} AND key = {p}"
    with repo.db.read() as conn:
        # two one-sided aggregates: each is one index lookup (min and max together would scan the series)
        first = conn.exec_driver_sql(f"SELECT min(step) {series}", (run_id, key)).scalar()
        last = conn.exec_driver_sql(f"SELECT max(step) {series}", (run_id, key)).scalar()
        if first is None:
            repo._require_run(conn, run_id)
            return MetricWindow(key=key, total=0, points=[], first_step=None, last_step=None)
        lo, hi = max(first, start if start is not None else first), min(last, end if end is not None else last)
        if lo > hi:
            return MetricWindow(key=key, total=0, points=[], first_step=first, last_step=last)
        window = f"{series} AND step >= {p} AND step <= {p}"
        if sample and hi - lo + 1 > max_points:
            return MetricWindow(key=key, total=None, points=_sample(conn, window, (run_id, key), lo, hi, max_points),
                                first_step=first, last_step=last)
        width = max(1, -(-(hi - lo + 1) // max(1, max_points // 2)))  # ceiling division: at most max_points / 2
        buckets = conn.exec_driver_sql(
            f"SELECT (step - {p}) / {p} AS bucket, min(step), max(step), min(value), max(value), min(timestamp), "
            f"max(timestamp), count(*) {window} GROUP BY bucket ORDER BY bucket",
            (lo, width, run_id, key, lo, hi)).fetchall()
        total = sum(b[7] for b in buckets)
        if total <= max_points:
            rows = conn.exec_driver_sql(f"SELECT value, timestamp, step {window} ORDER BY step, timestamp",
                                        (run_id, key, lo, hi)).fetchall()
            points = [Metric(key, math.nan if v is None else v, ts, s) for v, ts, s in rows]
            return MetricWindow(key=key, total=total, points=points, first_step=first, last_step=last)
    return MetricWindow(key=key, total=total, points=_extremes(key, buckets), first_step=first, last_step=last)


def _sample(conn: Connection, window: str, series: tuple[str, str], lo: int, hi: int, count: int) -> list[Metric]:
    query = f"SELECT value, timestamp, step {window} ORDER BY step LIMIT 1"
    points: dict[int, Metric] = {}
    for i in range(count):
        target = lo + (hi - lo) * i // (count - 1)
        found = conn.exec_driver_sql(query, (*series, target, hi)).first()
        if found is not None and found[2] not in points:
            value, timestamp, step = found
            points[step] = Metric(series[1], math.nan if value is None else value, timestamp, step)
    return sorted(points.values(), key=lambda m: m.step)


def _extremes(key: str, buckets: list[Any]) -> list[Metric]:
    points = []
    for _, first_step, last_step, low, high, first_ts, last_ts, count in buckets:
        low, high = (math.nan if low is None else low), (math.nan if high is None else high)
        points.append(Metric(key, low, first_ts, first_step))
        if count > 1 and last_step != first_step:
            points.append(Metric(key, high, last_ts, last_step))
    return points


def _number_out(value: float | None) -> float | str | None:
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _json_safe(value: Any) -> Any:
    return _number_out(value) if isinstance(value, float) else value
