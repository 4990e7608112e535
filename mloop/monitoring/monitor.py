"""Monitors: a served model's prediction log turned into windowed time series in the metadata store.

A monitor watches one model (every version and role it serves: primary, A/B variants, shadow). ``run_monitor``
computes every window that has closed since the monitor's watermark, reading only the log files written since
then, a few hours of windows at a time so memory stays bounded; it also recomputes the windows whose
predictions got labels since the last run. Each window's figures replace the old ones in one transaction with the
watermark, so a crash mid-run loses nothing and repeats nothing. ``series`` reads them back as a DataFrame.

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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import and_, delete, insert, select, update

from mloop._util.clock import now_ms
from mloop._util.names import check_name
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.monitoring import _log
from mloop.monitoring._tables import monitor_profiles, monitor_series, monitors
from mloop.monitoring.windows import LOG_COLUMNS as _LOG_COLUMNS
from mloop.monitoring.windows import Summary, summarize
from mloop.store.blob import open_blob_store
from mloop.store.sql import open_database
from mloop.validation.profile import Profile

__all__ = ["Monitor", "RunReport", "create_monitor", "get_monitor", "list_monitors", "run_monitor", "series",
           "parse_duration", "window_profile"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_WINDOW, MAX_WINDOW = 300, 86400
# windows computed together: two batches are in memory at once (one summarized, the next read), and the log of a
# busy model for two 90-minute stretches fits
BATCH_SECONDS = 90 * 60
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

    def to_json(self) -> str:
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> Monitor:
        data = json.loads(text)
        data["slices"] = tuple(data.get("slices", ()))
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
                   label_horizon: str | int = "7d", start: Any = None, settings: Settings | None = None) -> Monitor:
    """Create (or update) the monitor ``name`` of ``model``; windows are ``window`` long (5 minutes to a day).

    ``start`` (a datetime or ISO text) is where its first window begins; by default, the oldest prediction logged.
    """
    settings = settings or Settings.load()
    window_seconds = parse_duration(window, "window")
    if not MIN_WINDOW <= window_seconds <= MAX_WINDOW or 86400 % window_seconds:
        raise InvalidInputError(field="window", value=window,
                                expected="a window from 5 minutes to a day that divides a day (5m, 15m, 1h, 1d...)")
    if task is not None and task not in TASKS:
        raise InvalidInputError(field="task", value=task, expected=f"one of {list(TASKS)} or None")
    monitor = Monitor(check_name(name, "name"), check_name(model, "model"), window_seconds, task,
                      tuple(check_name(s, "slices") for s in slices), parse_duration(lateness, "lateness"),
                      parse_duration(label_horizon, "label_horizon"))
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


def run_monitor(name: str, *, now: Any = None, alerts: bool = True, settings: Settings | None = None) -> RunReport:
    """Compute every window of ``name`` closed by ``now`` (and ``lateness``) that is not computed yet, recompute
    those whose predictions got new labels, then judge the monitor's alert rules on them (``alerts``).

    One run of a monitor at a time, from any process: a run holds a lease on it (``ConflictError`` when another
    run holds it; a crashed run's lease expires after ``LEASE_SECONDS``).
    """
    settings = settings or Settings.load()
    monitor = get_monitor(name, settings)
    db = open_database(settings.db_url)
    owner = _owner()
    _claim(db, name, owner)
    try:
        report = _Runner(monitor, settings).run(now_ms() if now is None else _start_ms(now, "now"))
        if alerts:
            from mloop.monitoring.alerts import evaluate_alerts

            report.alerts = evaluate_alerts(name, settings=settings)
    finally:
        with db.write() as conn:
            conn.execute(update(monitors).where(monitors.c.name == name, monitors.c.lease_owner == owner)
                         .values(lease_owner=None, lease_until=None))
    return report


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


class _Runner:
    """One run of one monitor."""

    def __init__(self, monitor: Monitor, settings: Settings) -> None:
        self.monitor, self.settings = monitor, settings
        self.db = open_database(settings.db_url)
        self.blobs = open_blob_store(settings.artifact_root)
        self.step = monitor.window_seconds * 1000
        self.references: dict[str, tuple[Profile | None, Any]] = {}
        self.previous: dict[tuple[str, str], Profile] = {}
        self.task = monitor.task
        self.unrolled: set[int] | None = None  # windows written whose roll-ups wait (while relabelling)

    def run(self, now: int) -> RunReport:
        with self.db.read() as conn:
            state = conn.execute(select(monitors).where(monitors.c.name == self.monitor.name)).one()
        report = RunReport(self.monitor.name, watermark=state.watermark)
        self.feedback = _log.feedback_files(self.blobs, "")
        new_labels = _log.feedback_files(self.blobs, state.label_watermark) if state.label_watermark else self.feedback
        labels_mark = new_labels[-1] if new_labels else state.label_watermark
        watermark = state.watermark
        # error files of the windows this run may compute: new ones, and old ones that labels reopen
        horizon = self.monitor.label_horizon_seconds * 1000 if new_labels else 0
        self.error_files = _log.error_files(self.blobs, max(watermark - horizon, 0))
        if new_labels and watermark > 0:
            report.recomputed = self._relabel(new_labels, watermark, report)
        self.files = [(_log.written_ms(k) or 0, k) for k in _log.files_since(self.blobs, self.monitor.model,
                                                                              max(watermark, 0))]

        if watermark < 0:  # never run: begin with the oldest log file
            if not self.files:
                return report
            watermark = _floor(self.files[0][0] - self.late, self.monitor.window_seconds)
        closed = _floor(now - self.late, self.monitor.window_seconds)
        self._previous_of(watermark)
        batches = list(self._batches(watermark, closed))
        # the next batch's log is read (DuckDB and Arrow, without the GIL) while this one is summarized
        with ThreadPoolExecutor(max_workers=1) as reader:
            upcoming = reader.submit(self._load, *batches[0], self.files) if batches else None
            for i, (start, end) in enumerate(batches):
                assert upcoming is not None
                rows, failed = upcoming.result()
                if i + 1 < len(batches):
                    upcoming = reader.submit(self._load, *batches[i + 1], self.files)
                report.windows += self._summarize_batch(start, rows, failed, report)
                del rows, failed
                self._save_watermark(end, None)
        report.watermark = max(closed, watermark)
        self._save_watermark(report.watermark, labels_mark)
        return report

    @property
    def late(self) -> int:
        return self.monitor.lateness_seconds * 1000

    def _batches(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Stretches of a few hours of windows in ``[start, end)``, skipping those no log file can hold rows of."""
        size = max(self.step, BATCH_SECONDS * 1000 // self.step * self.step)
        begin = start
        while begin < end:
            upcoming = next((w for w, _ in self.files if w >= begin), None)
            if upcoming is None:
                return
            # rows written more than ``lateness`` after their window closed are late: a file holds no others
            begin = max(begin, _floor(upcoming - self.late, self.monitor.window_seconds))
            if begin >= end:
                return
            yield begin, min(begin + size, end)
            begin += size

    def _compute(self, start: int, end: int, report: RunReport, files: list[tuple[int, str]]) -> int:
        """Compute the windows in ``[start, end)`` from ``files`` (when written, key); returns how many had
        traffic."""
        return self._summarize_batch(start, *self._load(start, end, files), report)

    def _load(self, start: int, end: int, files: list[tuple[int, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The predictions and the failed requests in ``[start, end)``, from ``files`` (when written, key)."""
        keys = [k for w, k in files if start <= w < end + self.late + 60_000]
        rows = _log.read_rows(self.blobs, keys, start, end)
        failed = _log.read_errors(self.blobs, [k for w, k in self.error_files if start <= w < end + self.late + 60_000],
                                  self.monitor.model, start, end)
        return rows, failed

    def _summarize_batch(self, start: int, rows: pd.DataFrame, failed: pd.DataFrame, report: RunReport) -> int:
        """Summarize and store the windows of one batch read by ``_load``; returns how many had traffic."""
        report.rows += len(rows)
        if not len(rows) and not len(failed):
            return 0
        rows = self._with_labels(rows, start) if len(rows) else rows
        return self._store(rows, failed, report)

    def _with_labels(self, rows: pd.DataFrame, since: int) -> pd.DataFrame:
        keys = [k for k in self.feedback if (_log.written_ms(k) or 0) >= since]
        labels = _log.read_labels(self.blobs, keys)
        return rows.merge(labels, on="id", how="left") if len(labels) else rows.assign(label=None)

    def _store(self, rows: pd.DataFrame, failed: pd.DataFrame, report: RunReport) -> int:
        """Summarize and write each (window, version, role) of ``rows``, with its share of failed requests."""
        errors = failed.groupby([failed["time"] // self.step * self.step, "version", "role"]).size().to_dict() \
            if len(failed) else {}
        windows = set()
        if len(rows):
            rows = rows.assign(_window=rows["time"] // self.step * self.step)
            for (window, version, role), group in rows.groupby(["_window", "version", "role"], sort=True):
                summary = self._summarize(group.drop(columns=["_window"]), str(version), str(role))
                _add_errors(summary, errors.pop((window, version, role), 0))
                self._write(int(window), str(version), str(role), summary)
                windows.add(int(window))
        for (window, version, role), count in sorted(errors.items()):  # windows where every request failed
            summary = Summary()
            summary.add("rows", 0)
            summary.add("requests", 0)
            _add_errors(summary, count)
            self._write(int(window), str(version), str(role), summary)
            windows.add(int(window))
        report.starts.extend(sorted(windows))
        if self.unrolled is not None:  # relabelling window by window: rolled up once, after the last
            self.unrolled.update(windows)
        else:
            self._roll_up(windows)
        return len(windows)

    def _roll_up(self, windows: set[int]) -> None:
        """Roll up the hours and days of ``windows`` again, before the watermark moves past them (a crash before
        this recomputes the windows, and this with them)."""
        if windows:
            from mloop.monitoring.rollup import refresh_buckets

            with self.db.write() as conn:
                refresh_buckets(conn, self.monitor.name, self.monitor.window_seconds, sorted(windows))

    def _summarize(self, rows: pd.DataFrame, version: str, role: str) -> Summary:
        reference, schema = self._reference(version)
        task = self.task or _infer_task(rows)
        self.task = task
        # Versions with other inputs share the log: a column this version never sent is not one of its inputs.
        known = set(reference.columns if reference is not None else ())
        known |= set(schema.columns if schema is not None else ())
        empty = [c for c in rows.columns if c not in _LOG_COLUMNS and c not in known and rows[c].isna().all()]
        summary = summarize(rows.drop(columns=empty), task=task, reference=reference, schema=schema,
                            previous=self.previous.get((version, role)), slices=self.monitor.slices)
        if summary.profile is not None:
            self.previous[(version, role)] = summary.profile
        return summary

    def _reference(self, version: str) -> tuple[Profile | None, Any]:
        if version not in self.references:
            self.references[version] = training_reference(self.monitor.model, version, self.settings)
        return self.references[version]

    def _write(self, start: int, version: str, role: str, summary: Summary) -> None:
        key = {"monitor": self.monitor.name, "start": start, "version": version, "role": role}
        points = {(p.metric, p.column, p.slice): p.value for p in summary.points}  # the last of a repeated point
        with self.db.write() as conn:
            for table in (monitor_series, monitor_profiles):
                conn.execute(delete(table).where(and_(*(table.c[k] == v for k, v in key.items()))))
            if points:
                conn.execute(insert(monitor_series), [
                    {**key, "metric": m, "column": c[:256], "slice": s[:256], "value": v}
                    for (m, c, s), v in points.items()])
            if summary.profile is not None:
                conn.execute(insert(monitor_profiles).values(**key, profile=summary.profile.to_json()))

    def _save_watermark(self, watermark: int, labels: str | None) -> None:
        values: dict[str, Any] = {"watermark": watermark, "updated": now_ms(),
                                  "lease_until": now_ms() + LEASE_SECONDS * 1000}  # still running: keep the lease
        if labels is not None:
            values["label_watermark"] = labels
        with self.db.write() as conn:
            conn.execute(update(monitors).where(monitors.c.name == self.monitor.name).values(**values))

    def _relabel(self, label_keys: list[str], watermark: int, report: RunReport) -> int:
        """Recompute the computed windows holding predictions that the new labels are for."""
        ids = set(_log.read_labels(self.blobs, label_keys)["id"])
        oldest = min(_log.written_ms(k) or watermark for k in label_keys) - self.monitor.label_horizon_seconds * 1000
        keys = _log.files_since(self.blobs, self.monitor.model, max(oldest, 0), watermark + self.step)
        files = [(_log.written_ms(k) or 0, k) for k in keys]
        windows: set[int] = set()
        for key in keys:
            found = _log.ids_and_times(self.blobs, key)
            hit = found[found["id"].isin(ids) & (found["time"] < watermark)]
            windows.update((hit["time"] // self.step * self.step).tolist())
        self.unrolled = set()  # a day's bucket holds 288 windows: rolled up once, not once per window
        for start in sorted(windows):
            self._previous_of(start)
            self._compute(start, start + self.step, report, files)
        self._roll_up(self.unrolled)
        self.unrolled = None
        return len(windows)

    def _previous_of(self, start: int) -> None:
        """Load the stored profiles of the window before ``start``, the baseline of its window-to-window drift."""
        self.previous.clear()
        t = monitor_profiles.c
        with self.db.read() as conn:
            rows = conn.execute(select(t.version, t.role, t.profile).where(
                t.monitor == self.monitor.name, t.start == start - self.step)).all()
        for row in rows:
            self.previous[(row.version, row.role)] = Profile.from_dict(json.loads(row.profile))


def _add_errors(summary: Summary, failed: int) -> None:
    """The window's failed requests and their share of all its requests."""
    answered = next((p.value for p in summary.points if p.metric == "requests" and not p.column), 0.0)
    summary.add("errors", failed)
    summary.add("error_rate", failed / (answered + failed) if answered + failed else 0.0)


def _infer_task(rows: pd.DataFrame) -> str:
    """Classification when probabilities were logged or the outputs are not all numbers, else regression."""
    if rows["proba"].notna().any():
        return "classification"
    return "regression" if _log.decode(rows["output"]).dtype.kind == "f" else "classification"


def training_reference(model: str, version: str, settings: Settings) -> tuple[Profile | None, Any]:
    """The training profile and schema of a model version: those attached to the version, else those logged in
    its run for the ``train`` data set (``log_dataset``); ``None`` for what neither has."""
    from mloop.registry import registry_for
    from mloop.tracking.client import TrackingClient
    from mloop.validation import attach

    registry = registry_for(settings)
    try:
        mv = registry.get_version(model, int(version))
    except (NotFoundError, ValueError):
        return None, None
    found: list[Any] = []
    for on_version, in_run in ((attach.model_profile, attach.load_run_profile),
                               (attach.model_schema, attach.load_run_schema)):
        try:
            found.append(on_version(model, mv.version, registry))
            continue
        except NotFoundError:
            pass
        try:
            found.append(in_run(TrackingClient(settings), mv.run_id) if mv.run_id else None)
        except NotFoundError:
            found.append(None)
    return found[0], found[1]
