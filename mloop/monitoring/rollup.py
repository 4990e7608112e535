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
from sqlalchemy import and_, case, func, literal, select

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.monitoring._tables import monitor_series
from mloop.monitoring.monitor import get_monitor, series_filters
from mloop.store.sql import open_database

__all__ = ["EVERY", "rolled_up_series"]

EVERY = {"1h": 3600, "1d": 86400}
SUMMED = ("rows", "requests", "labelled", "violations", "errors")
WORST = ("latency_p50", "latency_p95", "latency_p99", "error_rate", "drift_statistic", "drift_effect", "drifted",
         "drift_share", "drift_prev_statistic", "drift_prev_effect", "drift_prev_drifted", "drift_prev_share")
_COLUMNS = ["start", "version", "role", "metric", "column", "slice", "value"]


def rolled_up_series(name: str, every: str, metric: list[str] | None = None, *, column: str | None = None,
                     version: str | None = None, role: str | None = None, start: Any = None, end: Any = None,
                     settings: Settings | None = None) -> pd.DataFrame:
    """The series of monitor ``name`` in buckets of ``every`` ("1h" or "1d"), the same columns as ``series``.

    >>> sorted(EVERY)
    ['1d', '1h']
    """
    settings = settings or Settings.load()
    if every not in EVERY:
        raise InvalidInputError(field="every", value=every, expected=f"one of {sorted(EVERY)}")
    monitor = get_monitor(name, settings)
    step = max(EVERY[every], monitor.window_seconds) * 1000
    t = monitor_series.c
    where = series_filters(name, metric, column=column, version=version, role=role, start=start, end=end)
    # floor division of integers: plain "/" in SQLite and PostgreSQL (SQLAlchemy's "/" would divide as floats)
    bucket = (t.start // literal(step)) * literal(step)
    value = case((t.metric.in_(SUMMED), func.sum(t.value)), (t.metric.in_(WORST), func.max(t.value)),
                 else_=func.avg(t.value))
    keys = [t.version, t.role, t.metric, t.column, t.slice]
    query = (select(bucket.label("bucket"), *keys, value.label("value")).where(and_(*where))
             .group_by(bucket, *keys).order_by(bucket, *keys))
    with open_database(settings.db_url).read() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame["start"] = pd.to_datetime(frame["start"].astype("int64"), unit="ms", utc=True)
    return frame
