"""One run of a monitor: the windows closed since its watermark computed from the prediction log, batch by batch,
and the windows whose predictions got labels recomputed; each window's figures written with the watermark.

The log is read a few hours of windows at a time (the next batch read on a thread while this one is summarized),
so memory stays bounded whatever the backlog.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
from sqlalchemy import and_, bindparam, delete, insert, select, update

from mloop._util.clock import now_ms
from mloop._util.failpoint import failpoint
from mloop.config import Settings
from mloop.errors import NotFoundError
from mloop.monitoring import _log
from mloop.monitoring._tables import monitor_profiles, monitor_series, monitors
from mloop.monitoring.batch import Window, WindowBatch
from mloop.monitoring.monitor import LEASE_SECONDS, Monitor, RunReport, _floor
from mloop.monitoring.windows import Summary
from mloop.serving._logfiles import FILE_GONE
from mloop.store.blob import open_blob_store
from mloop.store.sql import open_database
from mloop.validation.profile import Profile

__all__ = ["BATCH_SECONDS", "Runner", "training_reference"]

# windows computed together: two batches are in memory at once (one summarized, the next read), and the log of a
# busy model for two 90-minute stretches fits
BATCH_SECONDS = 90 * 60


class Runner:
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
        self.segments = _parsed_segments(monitor)
        self.unrolled_days: set[int] = set()  # windows written whose day's roll-up waits for its last batch

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
        self.files = _log.spans(_log.files_since(self.blobs, self.monitor.model, max(watermark, 0)))

        if watermark < 0:  # never run: begin with the oldest log file
            if not self.files:
                return report
            watermark = _floor(self.files[0][0] - self.late, self.monitor.window_seconds)
        closed = _floor(now - self.late, self.monitor.window_seconds)
        self._previous_of(watermark)
        batches = list(self._batches(watermark, closed))
        if watermark > 0 and batches:  # a run stopped before rolling up its last day: rolled up with this one's
            self.unrolled_days.add(watermark - self.step)
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
                self._roll_up_days(through=end if i + 1 < len(batches) else None)
                self._save_watermark(end, None)
                failpoint("monitor.after_batch")  # a crash between batches: some windows stored, more to come
        self._roll_up_days(through=None)
        report.watermark = max(closed, watermark)
        self._save_watermark(report.watermark, labels_mark)
        return report

    def run_window(self, start: int) -> RunReport:
        """Compute (or compute again) the one window beginning at ``start``, with every label logged so far; the
        watermark stays where it is (later windows are the scheduled runs' business)."""
        with self.db.read() as conn:
            watermark = conn.execute(select(monitors.c.watermark).where(monitors.c.name == self.monitor.name)).scalar()
        report = RunReport(self.monitor.name, watermark=watermark)
        end = start + self.step
        self.feedback = _log.feedback_files(self.blobs, "")
        self.error_files = _log.error_files(self.blobs, start)
        keys = _log.files_since(self.blobs, self.monitor.model, start, end + self.late + 60_000)
        self._previous_of(start)
        computed = self._compute(start, end, report, _log.spans(keys))
        self._roll_up_days(through=None)  # the window's day, whose roll-up would otherwise wait for a batch
        if watermark is not None and start < watermark:
            report.recomputed = computed
        else:
            report.windows = computed
        return report

    @property
    def late(self) -> int:
        return self.monitor.lateness_seconds * 1000

    def _batches(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Stretches of a few hours of windows in ``[start, end)``, skipping those no log file can hold rows of."""
        size = max(self.step, BATCH_SECONDS * 1000 // self.step * self.step)
        begin = start
        while begin < end:
            # the files are in order of their first written time: the first that reaches ``begin`` is the soonest
            upcoming = next((max(first, begin) for first, last, _ in self.files if last >= begin), None)
            if upcoming is None:
                return
            # rows written more than ``lateness`` after their window closed are late: a file holds no others
            begin = max(begin, _floor(upcoming - self.late, self.monitor.window_seconds))
            if begin >= end:
                return
            yield begin, min(begin + size, end)
            begin += size

    def _compute(self, start: int, end: int, report: RunReport, files: list[tuple[int, int, str]]) -> int:
        """Compute the windows in ``[start, end)`` from ``files`` (first and last written time, key); returns
        how many had traffic."""
        return self._summarize_batch(start, *self._load(start, end, files), report)

    def _load(self, start: int, end: int, files: list[tuple[int, int, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The predictions and the failed requests in ``[start, end)``, from ``files`` (first and last written
        time, key)."""
        until = end + self.late + 60_000
        keys = [k for first, last, k in files if last >= start and first < until]
        try:
            rows = _log.read_rows(self.blobs, keys, start, end)
        except FILE_GONE:  # compacted since they were listed: its file holds the rows
            rows = _log.read_rows(self.blobs, _log.files_since(self.blobs, self.monitor.model, start, until),
                                  start, end)
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
        written: list[tuple[int, str, str, Summary]] = []
        if len(rows):
            batch = WindowBatch(rows, self.step)
            for window in batch.windows:
                summary = self._summarize(batch, window)
                _add_errors(summary, errors.pop((window.start, window.version, window.role), 0))
                written.append((window.start, window.version, window.role, summary))
        for (window, version, role), count in sorted(errors.items()):  # windows where every request failed
            summary = Summary()
            summary.add("rows", 0)
            summary.add("requests", 0)
            _add_errors(summary, count)
            written.append((int(window), str(version), str(role), summary))
        self._write(written)
        windows = {start for start, _, _, _ in written}
        report.starts.extend(sorted(windows))
        if self.unrolled is not None:  # relabelling window by window: rolled up once, after the last
            self.unrolled.update(windows)
        else:  # hours now, days once their last batch is written
            self._roll_up(windows, ("1h",))
            self.unrolled_days.update(windows)
        return len(windows)

    def _roll_up_days(self, through: int | None) -> None:
        """Roll up the days of the windows written whose day ends at or before ``through`` (``None``: all): a day
        is rolled up once when its last batch is written, not again with every batch of it."""
        day = max(86_400, self.monitor.window_seconds) * 1000  # rollup's bucket of a day for this monitor
        done = {w for w in self.unrolled_days if through is None or w // day * day + day <= through}
        self._roll_up(done, ("1d",))
        self.unrolled_days -= done

    def _roll_up(self, windows: set[int], kinds: tuple[str, ...] = ("1h", "1d")) -> None:
        """Roll up the hours and days of ``windows`` again (a run stopped before this rolls them up with its
        next run's windows)."""
        if windows:
            from mloop.monitoring.rollup import refresh_buckets

            with self.db.write() as conn:
                refresh_buckets(conn, self.monitor.name, self.monitor.window_seconds, sorted(windows), kinds)

    def _summarize(self, batch: WindowBatch, window: Window) -> Summary:
        reference, schema = self._reference(window.version)
        task = self.task or _infer_task(batch.frame(window, ["proba", "output"]))
        self.task = task
        # Versions with other inputs share the log: a column this version never sent is not one of its inputs.
        known = set(reference.columns if reference is not None else ())
        known |= set(schema.columns if schema is not None else ())
        key = (window.version, window.role)
        summary = batch.summarize(window, task=task, reference=reference, schema=schema,
                                  previous=self.previous.get(key), slices=self.monitor.slices, known=known,
                                  segments=self.segments)
        if summary.profile is not None:
            self.previous[key] = summary.profile
        return summary

    def _reference(self, version: str) -> tuple[Profile | None, Any]:
        if version not in self.references:
            self.references[version] = training_reference(self.monitor.model, version, self.settings)
        return self.references[version]

    def _write(self, written: list[tuple[int, str, str, Summary]]) -> None:
        """Replace the stored figures and profiles of each (start, version, role, summary) of ``written``: one
        transaction and one statement of each kind for all of a batch's windows (a transaction per window cost
        more than summarizing it)."""
        if not written:
            return
        keys = [{"monitor": self.monitor.name, "start": start, "version": version, "role": role}
                for start, version, role, _ in written]
        series_rows, profile_rows = [], []
        for key, (_, _, _, summary) in zip(keys, written, strict=True):
            points = {(p.metric, p.column, p.slice): p.value for p in summary.points}  # the last of a repeated one
            series_rows += [{**key, "metric": m, "column": c[:256], "slice": s[:256], "value": v}
                            for (m, c, s), v in points.items()]
            if summary.profile is not None:
                profile_rows.append({**key, "profile": summary.profile.to_json()})
        with self.db.write() as conn:
            for table in (monitor_series, monitor_profiles):
                matches = and_(*(table.c[k] == bindparam(f"key_{k}") for k in keys[0]))
                conn.execute(delete(table).where(matches), [{f"key_{k}": v for k, v in key.items()} for key in keys])
            if series_rows:
                conn.execute(insert(monitor_series), series_rows)
            if profile_rows:
                conn.execute(insert(monitor_profiles), profile_rows)

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
        try:
            windows = self._windows_of(ids, keys, watermark)
        except FILE_GONE:  # compacted since they were listed: list them again
            keys = _log.files_since(self.blobs, self.monitor.model, max(oldest, 0), watermark + self.step)
            windows = self._windows_of(ids, keys, watermark)
        files = _log.spans(keys)
        self.unrolled = set()  # a day's bucket holds 288 windows: rolled up once, not once per window
        for start in sorted(windows):
            self._previous_of(start)
            self._compute(start, start + self.step, report, files)
        self._roll_up(self.unrolled)
        self.unrolled = None
        return len(windows)

    def _windows_of(self, ids: set[str], keys: list[str], watermark: int) -> set[int]:
        """The computed windows (before ``watermark``) of the predictions ``ids`` among the files ``keys``."""
        windows: set[int] = set()
        for key in keys:
            found = _log.ids_and_times(self.blobs, key)
            hit = found[found["id"].isin(ids) & (found["time"] < watermark)]
            windows.update((hit["time"] // self.step * self.step).tolist())
        return windows

    def _previous_of(self, start: int) -> None:
        """Load the stored profiles of the window before ``start``, the baseline of its window-to-window drift."""
        self.previous.clear()
        t = monitor_profiles.c
        with self.db.read() as conn:
            rows = conn.execute(select(t.version, t.role, t.profile).where(
                t.monitor == self.monitor.name, t.start == start - self.step)).all()
        for row in rows:
            self.previous[(row.version, row.role)] = Profile.from_dict(json.loads(row.profile))


def _parsed_segments(monitor: Monitor) -> list[tuple[str, Any]]:
    """The monitor's declared segments, parsed once per run (their parser loaded only when there are some)."""
    if not monitor.segments:
        return []
    from mloop.monitoring.segments import parse_segments

    return parse_segments(dict(monitor.segments))


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
