"""A monitor's series rolled up into hours or days in SQL, so a dashboard over a month of 5-minute windows reads
hundreds of points instead of hundreds of thousands.

Each figure is combined the way it reads: traffic adds up, latency percentiles and drift keep their worst
window (a mean would hide the spike the chart is there to show), everything else is the mean of its windows.

>>> import tempfile
>>> from mloop.config import Settings
>>> from mloop.monitoring import create_monitor
>>> settings = Settings.load(home=tempfile.mkdtemp())
>>> _ = create_monitor("eta-watch", "eta", window="5m", settings=settings)
>>> len(rolled_up_series("eta-watch", "1h", settings=settings))
0
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import and_, case, delete, func, insert, literal, select

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.monitoring._tables import monitor_rollups, monitor_series
from mloop.monitoring.monitor import _start_ms, get_monitor, series_filters
from mloop.store.sql import open_database

__all__ = ["EVERY", "refresh_buckets", "refresh_rollups", "rolled_up_series"]

EVERY = {"1h": 3600, "1d": 86400}
SUMMED = ("rows", "requests", "labelled", "violations", "errors")
WORST = ("latency_p50", "latency_p95", "latency_p99", "error_rate", "drift_statistic", "drift_effect", "drifted",
         "drift_share", "drift_prev_statistic", "drift_prev_effect", "drift_prev_drifted", "drift_prev_share")
_COLUMNS = ["start", "version", "role", "metric", "column", "slice", "value"]


def rolled_up_series(name: str, every: str, metric: list[str] | None = None, *, column: str | None = None,
                     version: str | None = None, role: str | None = None, start: Any = None, end: Any = None,
                     settings: Settings | None = None) -> pd.DataFrame:
    """The series of monitor ``name`` in buckets of ``every`` ("1h" or "1d"), the same columns as ``series``.

    Whole buckets are read from the stored roll-ups; a bucket that ``start`` or ``end`` cuts is rolled up from
    the windows inside the range, as if the others did not exist.

    >>> sorted(EVERY)
    ['1d', '1h']
    """
    settings = settings or Settings.load()
    if every not in EVERY:
        raise InvalidInputError(field="every", value=every, expected=f"one of {sorted(EVERY)}")
    monitor = get_monitor(name, settings)
    step = _step(every, monitor.window_seconds)
    low, high = (None if start is None else _start_ms(start)), (None if end is None else _start_ms(end))
    first = None if low is None else -(-low // step) * step  # the first bucket wholly inside the range
    last = None if high is None else high // step * step  # where the whole buckets end
    filters = (name, metric, column, version, role)
    with open_database(settings.db_url).read() as conn:
        if first is not None and last is not None and first >= last:  # no whole bucket: all of it on the spot
            parts = _aggregated(conn, step, *filters, low, high)
        else:
            parts = _aggregated(conn, step, *filters, low, first) if low is not None and low != first else []
            parts += _stored(conn, every, *filters, first, last)
            if high is not None and high != last:
                parts += _aggregated(conn, step, *filters, last, high)
    frame = pd.DataFrame(parts, columns=_COLUMNS)
    frame["start"] = pd.to_datetime(frame["start"].astype("int64"), unit="ms", utc=True)
    return frame


def refresh_rollups(name: str, starts: list[int] | None = None, *, settings: Settings | None = None) -> int:
    """Roll up again the buckets holding the windows that start at ``starts`` (epoch ms; ``None``: every bucket
    of the monitor). Returns the buckets refreshed.

    The monitor does it for the windows it computes; call it after writing ``monitor_series`` another way.

    >>> import tempfile
    >>> from mloop.monitoring import create_monitor
    >>> settings = Settings.load(home=tempfile.mkdtemp())
    >>> _ = create_monitor("eta-watch", "eta", window="5m", settings=settings)
    >>> refresh_rollups("eta-watch", [0, 300_000], settings=settings)
    2
    """
    settings = settings or Settings.load()
    window = get_monitor(name, settings).window_seconds
    with open_database(settings.db_url).write() as conn:
        return refresh_buckets(conn, name, window, starts)


def refresh_buckets(conn: Any, name: str, window_seconds: int, starts: list[int] | None,
                    kinds: tuple[str, ...] = tuple(EVERY)) -> int:
    """``refresh_rollups`` inside the caller's transaction (the one that wrote the windows), for the buckets of
    ``kinds`` ("1h", "1d") only."""
    r = monitor_rollups.c
    refreshed = 0
    for every in kinds:
        step = _step(every, window_seconds)
        if starts is None:
            conn.execute(delete(monitor_rollups).where(r.monitor == name, r.every == every))
            buckets: list[int | None] = [None]
        else:
            buckets = sorted({int(s) // step * step for s in starts})
        for bucket in buckets:
            if bucket is not None:
                conn.execute(delete(monitor_rollups).where(r.monitor == name, r.every == every, r.start == bucket))
            conn.execute(insert(monitor_rollups).from_select(
                ["monitor", "every", "metric", "start", "version", "role", "column", "slice", "value"],
                _rollup_query(name, step, every, bucket)))
            refreshed += 1
    return refreshed


def _rollup_query(name: str, step: int, every: str, bucket: int | None) -> Any:
    """The SELECT that rolls ``name``'s windows up into buckets of ``step`` (only ``bucket`` when given)."""
    t = monitor_series.c
    where = [t.monitor == name]
    if bucket is not None:
        where += [t.start >= bucket, t.start < bucket + step]
    keys = [t.metric, _bucket(step), t.version, t.role, t.column, t.slice]
    return (select(t.monitor, literal(every).label("every"), *keys, _combined().label("value"))
            .where(and_(*where)).group_by(t.monitor, *keys))


def _stored(conn: Any, every: str, name: str, metric: list[str] | None, column: str | None, version: str | None,
            role: str | None, first: int | None, last: int | None) -> list[tuple]:
    """The stored roll-ups of whole buckets in ``[first, last)``: one range scan of the primary key per metric."""
    r = monitor_rollups.c
    where = [r.monitor == name, r.every == every]
    metrics = [metric] if isinstance(metric, str) else metric
    if metrics:
        where.append(r.metric.in_(metrics))
    for col, value in ((r.column, column), (r.version, version), (r.role, role)):
        if value is not None:
            where.append(col == str(value))
    if first is not None:
        where.append(r.start >= first)
    if last is not None:
        where.append(r.start < last)
    keys = [r.version, r.role, r.metric, r.column, r.slice]
    query = select(r.start, *keys, r.value).where(and_(*where)).order_by(r.start, *keys)
    return [tuple(row) for row in conn.execute(query).all()]


def _aggregated(conn: Any, step: int, name: str, metric: list[str] | None, column: str | None, version: str | None,
                role: str | None, start: int, end: int) -> list[tuple]:
    """The windows in ``[start, end)`` (epoch ms) rolled up on the spot: a bucket the range cuts."""
    t = monitor_series.c
    where = series_filters(name, metric, column=column, version=version, role=role, start=None, end=None)
    where += [t.start >= start, t.start < end]
    keys = [t.version, t.role, t.metric, t.column, t.slice]
    bucket = _bucket(step)
    query = (select(bucket.label("bucket"), *keys, _combined().label("value")).where(and_(*where))
             .group_by(bucket, *keys).order_by(bucket, *keys))
    return [tuple(row) for row in conn.execute(query).all()]


def _combined() -> Any:
    """Each figure combined the way it reads: traffic summed, the worst window kept, the rest averaged."""
    t = monitor_series.c
    return case((t.metric.in_(SUMMED), func.sum(t.value)), (t.metric.in_(WORST), func.max(t.value)),
                else_=func.avg(t.value))


def _bucket(step: int) -> Any:
    # floor division of integers: plain "/" in SQLite and PostgreSQL (SQLAlchemy's "/" would divide as floats)
    t = monitor_series.c
    return (t.start // literal(step)) * literal(step)


def _step(every: str, window_seconds: int) -> int:
    return max(EVERY[every], window_seconds) * 1000

