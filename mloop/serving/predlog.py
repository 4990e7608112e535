"""The prediction log: every prediction, written in Parquet batches off the response path.

A request appends its rows to in-memory columns (no I/O; see _predlog_batch.py for why
the per-row work happens there); a writer thread turns what accumulated into an Arrow
table with a few calls into Arrow every ``flush_seconds`` (or sooner when ``max_rows``
pile up), encodes Parquet into an Arrow buffer (C++, without the GIL) and stores it as
one file under
``<artifact_root>/predictions/<model>/<day>/``; once an hour has closed, its files are joined into one on a
thread of their own (``_logfiles.py`` says why and how). ``close()`` writes what is left, so a
graceful shutdown loses nothing. Memory stays bounded: while the writer is behind (a slow or hung
store) by ``10 * max_rows`` rows, further requests are not logged but counted in ``dropped``.
Labels sent later (``POST /feedback``) land under ``predictions/_feedback/``
and ``read_predictions`` joins them on the prediction id.

>>> import tempfile
>>> from mloop.config import Settings
>>> settings = Settings.load(home=tempfile.mkdtemp())
>>> log = PredictionLog(settings)
>>> log.record("eta", "3", "primary", "r1", {"km": [2.0]}, [7.5], 0.001, 1)
>>> log.feedback([("r1-0", 8.0)])
>>> log.close()
>>> read_predictions(settings, "eta")[["id", "version", "output", "label"]].to_dict("records")
[{'id': 'r1-0', 'version': '3', 'output': '7.5', 'label': '8.0'}]
"""

from __future__ import annotations

import io
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.config import Settings, check_retention_days
from mloop.serving._logfiles import FILE_GONE, compact_files, compact_log, live_keys, new_key, new_token
from mloop.serving._predlog_batch import Batch, json_texts, proba_texts
from mloop.store.blob import open_blob_store

__all__ = ["PredictionLog", "compact_predictions", "purge_predictions", "read_predictions"]

PREFIX = "predictions"
FEEDBACK = "_feedback"
ERRORS = "_errors"  # requests answered with an error: predictions/_errors/<day>/<part>.parquet
# As read back; on disk ``inputs`` is a struct of the model's input columns.
_SCHEMA = pa.schema([("id", pa.string()), ("time", pa.timestamp("ms", tz="UTC")), ("model", pa.string()),
                     ("version", pa.string()), ("role", pa.string()), ("inputs", pa.string()),
                     ("output", pa.string()), ("latency_ms", pa.float64()), ("proba", pa.string())])
_FEEDBACK_SCHEMA = pa.schema([("id", pa.string()), ("time", pa.timestamp("ms", tz="UTC")), ("label", pa.string())])
ERROR_SCHEMA = pa.schema([("id", pa.string()), ("time", pa.timestamp("ms", tz="UTC")), ("model", pa.string()),
                          ("version", pa.string()), ("role", pa.string()), ("status", pa.int32()),
                          ("latency_ms", pa.float64())])


class PredictionLog:
    """Buffered, asynchronous Parquet writer of predictions and feedback labels."""

    def __init__(self, settings: Settings, *, flush_seconds: float = 1.0, max_rows: int = 50_000,
                 compact: bool = True) -> None:
        self.blobs = open_blob_store(settings.artifact_root)
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self.compact = compact
        self._token = new_token()  # this log's files: the compactor joins them, and covers no other log's
        self._writing: list[datetime] = []  # the stamps of the flushes storing their files now
        self._hours: dict[tuple[str, str], list[str]] = {}  # (day folder, hour) -> prediction files written in it
        self._joined: list[str] = []  # files compacted an hour ago: deleted at the next compaction
        self._compactor: ThreadPoolExecutor | None = None
        self._compacting: Future[None] | None = None
        self._compact_lock = threading.Lock()
        self._batches: dict[tuple[str, tuple[str, ...]], Batch] = {}
        self._feedback: list[tuple[str, float, str]] = []
        self._failed: list[tuple[str, int, str, str, str, int, float]] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self.written = 0
        self.errors = 0
        self.dropped = 0  # rows not logged because the writer was too far behind
        self._thread = threading.Thread(target=self._loop, name="mloop-predlog", daemon=True)
        self._thread.start()

    def record(self, model: str, version: str, role: str, request_id: str, columns: dict[str, list[Any]],
               outputs: list[Any], seconds: float, n: int, *, proba: list[list[float]] | None = None,
               classes: list[Any] | None = None) -> None:
        """Remember one request's predictions (the row ids are ``<request_id>-<row>``); never blocks on I/O.

        ``outputs`` are the labels (for a probabilities-only answer, the most probable class); ``proba`` the
        class probabilities per row when they were answered, logged as ``{class: probability}`` JSON text.
        """
        if len(outputs) != n:  # a caller's bug: count it rather than misalign the batch's columns
            self.errors += 1
            return
        texts = json_texts(outputs)  # on the request path: a loop over them in the writer would hold the GIL
        try:
            probas = proba_texts(proba, classes) if proba is not None else [None] * n
        except (TypeError, ValueError):  # the answer went out already; logging it must not turn it into a 500
            self.errors += 1
            return
        now = time.time()
        key = (model, tuple(columns))
        with self._lock:
            if self._rows >= 10 * self.max_rows:  # the writer is stuck: drop rather than grow without bound
                self.dropped += n
                return
            batch = self._batches.get(key)
            if batch is None:
                batch = self._batches[key] = Batch(model, key[1])
            batch.add(now, version, role, request_id, columns, texts, probas, seconds)
            self._rows += n
        if self._rows >= self.max_rows:
            self._wake.set()

    def record_error(self, model: str, version: str, role: str, request_id: str, status: int,
                     seconds: float) -> None:
        """Remember one request answered with an error status (its monitor counts errors per window)."""
        with self._lock:
            if len(self._failed) >= 10 * self.max_rows:
                self.dropped += 1
                return
            self._failed.append((request_id, int(time.time() * 1000), model, version, role, status, seconds * 1000))

    def feedback(self, labels: list[tuple[str, Any]]) -> None:
        """Attach ground-truth labels to prediction ids (stored as JSON text)."""
        now = time.time()
        with self._lock:
            self._feedback.extend((pid, now, orjson.dumps(label).decode()) for pid, label in labels)
        self._wake.set()

    def flush(self) -> None:
        """Write everything recorded so far (from any thread)."""
        with self._lock:
            batches, self._batches, self._rows = self._batches, {}, 0
            feedback, self._feedback = self._feedback, []
            failed, self._failed = self._failed, []
        with self._compact_lock:  # named and known to be storing at once: its hour stays open until it is stored
            now = datetime.now(UTC)
            self._writing.append(now)
        stored = []
        for batch in batches.values():
            key = new_key(f"{PREFIX}/{batch.model}", now, self._token)
            try:
                self._put(key, batch.table())
                self.written += batch.rows
                stored.append(key)
            except Exception:  # the log must never take the server down; count and go on
                self.errors += 1
        try:
            if feedback:
                self._write_feedback(feedback)
            if failed:
                self._put(new_key(f"{PREFIX}/{ERRORS}"), _error_table(failed))
        except Exception:
            self.errors += 1
        self._compact_closed(now, stored, stored_at=now)

    def close(self) -> None:
        """Stop the writer thread after writing what is left."""
        self._stop = True
        self._wake.set()
        self._thread.join(30)
        self.flush()
        if self._compactor is not None:
            self._compactor.shutdown(wait=True)  # an hour being compacted is finished, not left half done

    def _compact_closed(self, now: datetime, stored: list[str], stored_at: datetime | None = None) -> None:
        """Remember the files just stored by their hour (by the flush stamped ``stored_at``), and hand the hours
        that have closed to the compactor thread (one handover at a time: a busy hour takes it seconds)."""
        with self._compact_lock:  # flush() may run on a caller's thread beside the writer's
            if stored_at is not None:
                self._writing.remove(stored_at)
            if not self.compact:
                return
            # an hour is closed once no flush stamped in it is still storing (on a slow store, a flush on another
            # thread can be, with its files named before the last one stored: they must be joined too)
            settled = min([now - timedelta(seconds=10), *self._writing])
            settled_hour = (f"{settled:%Y-%m-%d}", f"{settled:%H}")
            for key in stored:
                self._hours.setdefault((key.rpartition("/")[0], key.rpartition("/")[2][:2]), []).append(key)
            closed = [h for h in self._hours if (h[0].rpartition("/")[2], h[1]) < settled_hour]
            if not closed or (self._compacting is not None and not self._compacting.done()):
                return
            groups = [self._hours.pop(h) for h in closed]
            if self._compactor is None:
                self._compactor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mloop-predlog-compact")
            self._compacting = self._compactor.submit(self._compact, groups)

    def _compact(self, groups: list[list[str]]) -> None:
        # the files joined an hour ago go now: any reader that listed them then has read them since
        try:
            for key in self._joined:
                self.blobs.delete(key)
            self._joined = []
            for keys in groups:
                if len(keys) > 1:
                    self._joined.extend(compact_files(self.blobs, keys))
        except Exception:  # left as they are (readers handle either), and mloop gc compacts them later
            self.errors += 1

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    # ------------------------------------------------------------------ writing
    def _write_feedback(self, feedback: list[tuple[str, float, str]]) -> None:
        table = pa.table({"id": [f[0] for f in feedback], "time": [int(f[1] * 1000) for f in feedback],
                          "label": [f[2] for f in feedback]}, schema=_FEEDBACK_SCHEMA)
        self._put(new_key(f"{PREFIX}/{FEEDBACK}"), table)

    def _put(self, key: str, table: pa.Table) -> None:
        # into an Arrow buffer, not a BytesIO: the encoder then never calls back into Python (no GIL)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        self.blobs.put_bytes(key, sink.getvalue().to_pybytes())


def _readable(table: pa.Table) -> pa.Table:
    """A log file with its inputs as JSON text, so files written with different input types concatenate."""
    if "proba" not in table.column_names:  # written before probabilities were logged
        table = table.append_column("proba", pa.nulls(table.num_rows, pa.string()))
    column = table.column("inputs")
    if pa.types.is_string(column.type):
        return table
    text = pa.array([orjson.dumps(d, option=orjson.OPT_SERIALIZE_NUMPY).decode() for d in column.to_pylist()],
                    pa.string())
    return table.set_column(table.schema.get_field_index("inputs"), "inputs", text)


def _error_table(failed: list[tuple[str, int, str, str, str, int, float]]) -> pa.Table:
    ids, times, models, versions, roles, statuses, latencies = zip(*failed, strict=True)
    return pa.table({"id": pa.array(ids, pa.string()), "time": pa.array(times, pa.int64()).cast(ERROR_SCHEMA[1].type),
                     "model": pa.array(models, pa.string()), "version": pa.array(versions, pa.string()),
                     "role": pa.array(roles, pa.string()), "status": pa.array(statuses, pa.int32()),
                     "latency_ms": pa.array(latencies, pa.float64())}, schema=ERROR_SCHEMA)


def read_predictions(settings: Settings, model: str | None = None, *, with_feedback: bool = True) -> pd.DataFrame:
    """The logged predictions (of one model, or all), oldest first, with the latest label joined by id."""
    blobs = open_blob_store(settings.artifact_root)
    prefix = f"{PREFIX}/{model}/" if model else f"{PREFIX}/"
    try:
        tables = _read_log(blobs, prefix)
    except FILE_GONE:  # a file compacted away since the listing: the compacted one is listed now
        tables = _read_log(blobs, prefix)
    frame = pa.concat_tables(tables).to_pandas() if tables else _SCHEMA.empty_table().to_pandas()
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    if not with_feedback:
        return frame
    fkeys = sorted(k for k in blobs.list(f"{PREFIX}/{FEEDBACK}/") if k.endswith(".parquet"))
    if not fkeys:
        frame["label"] = pd.Series([None] * len(frame), dtype=object)
        return frame
    labels = pa.concat_tables([pq.read_table(io.BytesIO(blobs.get_bytes(k))) for k in fkeys]).to_pandas()
    labels = labels.sort_values("time", kind="stable").drop_duplicates("id", keep="last")
    labels = labels.rename(columns={"time": "label_time"})
    return frame.merge(labels, on="id", how="left")


def _read_log(blobs: Any, prefix: str) -> list[pa.Table]:
    keys = live_keys([k for k in blobs.list(prefix) if k.endswith(".parquet")
                      and f"/{FEEDBACK}/" not in f"/{k}" and f"/{ERRORS}/" not in f"/{k}"])
    return [_readable(pq.read_table(io.BytesIO(blobs.get_bytes(k)))) for k in sorted(keys)]


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def purge_predictions(settings: Settings, *, retention_days: float | None = None, now: datetime | None = None
                      ) -> dict[str, int]:
    """Delete the prediction log's day folders (predictions and feedback labels) older than the retention.

    ``retention_days`` defaults to ``settings.prediction_log_retention_days`` (``0`` keeps everything). A day
    goes once all of it is older than ``now - retention_days``; folders not named like a day are left alone.
    ``mloop gc`` calls it. Returns ``{"days": folders removed, "files": files removed}``.

    >>> import tempfile
    >>> purge_predictions(Settings.load(home=tempfile.mkdtemp()))
    {'days': 0, 'files': 0}
    """
    days = settings.prediction_log_retention_days if retention_days is None else check_retention_days(retention_days,
                                                                                         "retention_days")
    if days == 0:
        return {"days": 0, "files": 0}
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    blobs = open_blob_store(settings.artifact_root)
    stale = set()
    for key in blobs.list(f"{PREFIX}/"):
        parts = key.split("/")
        # predictions/<model>/<day>/<part>.parquet and predictions/_feedback/<day>/<part>.parquet
        if len(parts) == 4 and _DAY.fullmatch(parts[2]):
            try:
                day = datetime.strptime(parts[2], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                continue
            if day + timedelta(days=1) <= cutoff:
                stale.add("/".join(parts[:3]))
    files = sum(blobs.delete(folder) for folder in sorted(stale))
    return {"days": len(stale), "files": files}


def compact_predictions(settings: Settings, *, now: datetime | None = None) -> dict[str, int]:
    """Join each model's log files of every hour closed two hours ago or more into one file per writer (the
    serving log does this for its own hours as they close; this catches what a process that ended left), and
    delete the files an earlier run joined: those joined now go at the next run, since a reader listing the
    folder now may have seen them and not the compacted file. ``mloop gc`` calls it. Returns
    ``{"compacted": files joined, "deleted": files deleted}``.

    >>> import tempfile
    >>> compact_predictions(Settings.load(home=tempfile.mkdtemp()))
    {'compacted': 0, 'deleted': 0}
    """
    return compact_log(open_blob_store(settings.artifact_root), PREFIX, now=now)
