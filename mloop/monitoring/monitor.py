"""Monitors: a served model's prediction log turned into windowed time series in the metadata store.

A monitor watches one model (every version and role it serves: primary, A/B variants, shadow). ``run_monitor``
computes every window that has closed since the monitor's watermark, reading only the log files written since
then (``_runner``); it also recomputes the windows whose predictions got labels since the last run. Each
window's figures replace the old ones in one transaction with the watermark, so a crash mid-run loses nothing
and repeats nothing. ``series`` reads them back as a DataFrame.

>>> import tempfile
>>> from mloop.config import Settings
>>> settings = Settings.load(home=tempfile.mkdtemp())
>>> create_monitor("eta-watch", "eta", window="5m", settings=settings).window_seconds
300
>>> run_monitor("eta-watch", settings=settings).windows
0
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import and_, insert, select, update

from mloop._util.clock import now_ms
from mloop._util.names import check_name
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.monitoring._tables import monitor_profiles, monitor_series, monitors
from mloop.store.sql import open_database
from mloop.validation.profile import Profile

__all__ = ["Monitor", "RunReport", "create_monitor", "get_monitor", "list_monitors", "run_monitor", "series",
           "parse_duration", "window_profile"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_WINDOW, MAX_WINDOW = 300, 86400
LEASE_SECONDS = 600  # a run that died on another machine holds its monitor at most this long (renewed per batch)
TASKS = ("classification", "regression")


def parse_duration(text: str | int | float, field: str) -> int:
    """``"5m"``, ``"1h"``, ``"1d"`` or a number of seconds, as whole seconds.

    >>> parse_duration("15m", "window")
    900
    """
    if isinstance(text, bool):
        raise InvalidInputError(field=field, value=text, expected="a duration such as '5m', '1h' or '1d'")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
        if found is None:
            raise InvalidInputError(field=field, value=text, expected="a duration such as '5m', '1h' or '1d'")
        seconds = float(found.group(1)) * _UNITS[found.group(2) or "s"]
    if not 0 <= seconds <= 366 * 86400:
        raise InvalidInputError(field=field, value=text, expected="a duration between 0 and 366 days")
    return int(seconds)


@dataclass(frozen=True)
class Monitor:
    """What a monitor watches and how: the model, the window length, the task, the slices of performance."""

    name: str
    model: str
    window_seconds: int = 3600
    task: str | None = None  # classification or regression; None: from the first labelled or logged window
    slices: tuple[str, ...] = ()
    lateness_seconds: int = 120  # how long after a window closes its last predictions may still be written
    label_horizon_seconds: int = 7 * 86400  # how old a prediction may be when its label arrives
    segments: tuple[tuple[str, str], ...] = ()  # declared segments: (name, condition over the inputs)

    def to_json(self) -> str:
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> Monitor:
        data = json.loads(text)
        data["slices"] = tuple(data.get("slices", ()))
        data["segments"] = tuple((name, condition) for name, condition in data.get("segments", ()))
        return cls(**data)


@dataclass
class RunReport:
    """What one run of a monitor did."""

    monitor: str
    windows: int = 0  # windows computed for the first time
    recomputed: int = 0  # windows computed again because labels arrived
    rows: int = 0
    watermark: int = 0
    starts: list[int] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)  # the AlertEvents the run's windows caused


def create_monitor(name: str, model: str, *, window: str | int = "1h", task: str | None = None,
                   slices: list[str] | tuple[str, ...] = (), lateness: str | int = "2m",
                   label_horizon: str | int = "7d", start: Any = None, segments: dict[str, str] | None = None,
                   settings: Settings | None = None) -> Monitor:
    """Create (or update) the monitor ``name`` of ``model``; windows are ``window`` long (5 minutes to a day).

    ``start`` (a datetime or ISO text) is where its first window begins; by default, the oldest prediction logged.
    ``slices`` are input columns and ``segments`` named conditions over the inputs (``{"long": "km > 10"}``) that
    performance is measured by, besides all rows.
    """
    from mloop.monitoring.segments import parse_segments

    settings = settings or Settings.load()
    window_seconds = parse_duration(window, "window")
    if not MIN_WINDOW <= window_seconds <= MAX_WINDOW or 86400 % window_seconds:
        raise InvalidInputError(field="window", value=window,
                                expected="a window from 5 minutes to a day that divides a day (5m, 15m, 1h, 1d...)")
    if task is not None and task not in TASKS:
        raise InvalidInputError(field="task", value=task, expected=f"one of {list(TASKS)} or None")
    monitor = Monitor(check_name(name, "name"), check_name(model, "model"), window_seconds, task,
                      tuple(check_name(s, "slices") for s in slices), parse_duration(lateness, "lateness"),
                      parse_duration(label_horizon, "label_horizon"),
                      tuple((name, condition.source) for name, condition in parse_segments(segments)))
    db = open_database(settings.db_url)
    first = _start_ms(start) if start is not None else None
    with db.write() as conn:
        found = conn.execute(select(monitors.c.name).where(monitors.c.name == monitor.name)).first()
        if found is None:
            conn.execute(insert(monitors).values(name=monitor.name, model=monitor.model, spec=monitor.to_json(),
                                                 watermark=-1 if first is None else _floor(first, window_seconds),
                                                 label_watermark="", created=now_ms(), updated=now_ms()))
        else:
            changes: dict[str, Any] = {"spec": monitor.to_json(), "model": monitor.model, "updated": now_ms()}
            if first is not None:
                changes["watermark"] = _floor(first, window_seconds)
            conn.execute(update(monitors).where(monitors.c.name == monitor.name).values(**changes))
    return monitor


def get_monitor(name: str, settings: Settings | None = None) -> Monitor:
    """The monitor called ``name``."""
    settings = settings or Settings.load()
    with open_database(settings.db_url).read() as conn:
        row = conn.execute(select(monitors.c.spec).where(monitors.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"No monitor named {name!r}; create it with mloop monitor create.", field="monitor")
    return Monitor.from_json(row.spec)


def list_monitors(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every monitor with its model, window and watermark."""
    settings = settings or Settings.load()
    with open_database(settings.db_url).read() as conn:
        rows = conn.execute(select(monitors).order_by(monitors.c.name)).all()
    return [{"name": r.name, "model": r.model, "window_seconds": Monitor.from_json(r.spec).window_seconds,
             "watermark": r.watermark, "updated": r.updated} for r in rows]


def run_monitor(name: str, *, now: Any = None, window_start: Any = None, alerts: bool = True,
                settings: Settings | None = None) -> RunReport:
    """Compute every window of ``name`` closed by ``now`` (and ``lateness``) that is not computed yet, recompute
    those whose predictions got new labels, then judge the monitor's alert rules on them (``alerts``).

    With ``window_start`` (a datetime or ISO text), compute (or compute again) that one window only, from the log
    and every label logged so far; it must have closed, and the watermark does not move.

    One run of a monitor at a time, from any process: a run holds a lease on it (``ConflictError`` when another
    run holds it; a crashed run's lease expires after ``LEASE_SECONDS``).
    """
    settings = settings or Settings.load()
    monitor = get_monitor(name, settings)
    at = now_ms() if now is None else _start_ms(now, "now")
    chosen = None if window_start is None else _closed_window(monitor, window_start, at)
    db = open_database(settings.db_url)
    owner = _owner()
    _claim(db, name, owner)
    try:
        from mloop.monitoring._runner import Runner

        runner = Runner(monitor, settings)
        report = runner.run(at) if chosen is None else runner.run_window(chosen)
        if alerts:
            from mloop.monitoring.alerts import evaluate_alerts

            report.alerts = evaluate_alerts(name, settings=settings)
    finally:
        with db.write() as conn:
            conn.execute(update(monitors).where(monitors.c.name == name, monitors.c.lease_owner == owner)
                         .values(lease_owner=None, lease_until=None))
    return report


def _closed_window(monitor: Monitor, window_start: Any, now: int) -> int:
    """``window_start`` as epoch milliseconds, checked to begin one of the monitor's windows, closed by ``now``."""
    start = _start_ms(window_start, "window_start")
    if start % (monitor.window_seconds * 1000):
        nearest = pd.Timestamp(_floor(start, monitor.window_seconds), unit="ms", tz="UTC").isoformat()
        raise InvalidInputError(field="window_start", value=str(window_start),
                                expected=f"the start of a {monitor.window_seconds}-second window, e.g. {nearest}")
    closes = start + (monitor.window_seconds + monitor.lateness_seconds) * 1000
    if closes > now:
        raise InvalidInputError(field="window_start", value=str(window_start),
                                expected="a window that has closed (its end plus the monitor's lateness has passed)")
    return start


def _claim(db: Any, name: str, owner: str) -> None:
    """Take the monitor's lease for ``owner``; a lease whose holder died on this machine is taken over at once."""
    now = now_ms()
    with db.write() as conn:
        free = (monitors.c.lease_until.is_(None)) | (monitors.c.lease_until < now)
        holder = conn.execute(select(monitors.c.lease_owner).where(monitors.c.name == name)).scalar()
        if holder and _dead_here(holder):
            free = free | (monitors.c.lease_owner == holder)
        claimed = conn.execute(update(monitors).where(monitors.c.name == name, free).values(
            lease_owner=owner, lease_until=now + LEASE_SECONDS * 1000)).rowcount
    if not claimed:
        raise ConflictError(f"Monitor {name!r} is being run by another process; try again when it is done.",
                            field="monitor")


def _owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _dead_here(holder: str) -> bool:
    """True when ``holder`` (host:pid:id) was a process of this machine that no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname()[:40] or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def series(name: str, metric: str | list[str] | None = None, *, column: str | None = None,
           version: str | None = None, role: str | None = None, start: Any = None, end: Any = None,
           settings: Settings | None = None) -> pd.DataFrame:
    """The monitor's figures as a DataFrame: ``start`` (UTC), ``version``, ``role``, ``metric``, ``column``,
    ``slice``, ``value``; filtered by any of the arguments."""
    settings = settings or Settings.load()
    get_monitor(name, settings)
    t = monitor_series.c
    where = series_filters(name, metric, column=column, version=version, role=role, start=start, end=end)
    query = select(t.start, t.version, t.role, t.metric, t.column, t.slice, t.value).where(and_(*where))
    with open_database(settings.db_url).read() as conn:
        rows = conn.execute(query).all()  # sorted below: an ORDER BY here makes SQLite walk every metric's rows
    # plain tuples: pandas probes each SQLAlchemy Row for attributes, which costs more than the query
    columns = ["start", "version", "role", "metric", "column", "slice", "value"]
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=columns)
    frame = frame.sort_values(columns[:-1], kind="stable", ignore_index=True)
    frame["start"] = pd.to_datetime(frame["start"].astype("int64"), unit="ms", utc=True)
    return frame


def series_filters(name: str, metric: str | list[str] | None, *, column: str | None, version: str | None,
                   role: str | None, start: Any, end: Any) -> list[Any]:
    """The WHERE conditions on ``monitor_series`` that ``series`` and its roll-ups share."""
    t = monitor_series.c
    where = [t.monitor == name]
    metrics = [metric] if isinstance(metric, str) else metric
    if metrics:
        where.append(t.metric.in_(metrics))
    for col, value in ((t.column, column), (t.version, version), (t.role, role)):
        if value is not None:
            where.append(col == str(value))
    if start is not None:
        where.append(t.start >= _start_ms(start))
    if end is not None:
        where.append(t.start < _start_ms(end))
    return where


def window_profile(name: str, start: Any, version: str, role: str = "primary",
                   settings: Settings | None = None) -> Profile:
    """The profile of one window (its inputs and prediction), to lay over the training profile."""
    settings = settings or Settings.load()
    t = monitor_profiles.c
    with open_database(settings.db_url).read() as conn:
        row = conn.execute(select(t.profile).where(t.monitor == name, t.start == _start_ms(start),
                                                    t.version == str(version), t.role == role)).first()
    if row is None:
        raise NotFoundError(f"Monitor {name!r} has no window starting at {start} for v{version} ({role}).",
                            field="start")
    return Profile.from_dict(json.loads(row.profile))


_EARLIEST, _LATEST = pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")


def _start_ms(value: Any, field: str = "start") -> int:
    """``value`` (a datetime or ISO text with a zone, between 2000 and 2200) as epoch milliseconds."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInputError(field=field, value=value, expected="a datetime or ISO 8601 text") from None
    if stamp is pd.NaT or stamp.tzinfo is None:
        raise InvalidInputError(field=field, value=value, expected="a time with a zone (UTC offset)")
    if not _EARLIEST <= stamp < _LATEST:
        raise InvalidInputError(field=field, value=str(value), expected="a time between the years 2000 and 2200")
    return int(stamp.timestamp() * 1000)


def _floor(ms: int, window_seconds: int) -> int:
    step = window_seconds * 1000
    return ms // step * step
