"""The background writer: logging calls append to a queue and return at once.

A daemon thread drains the queue in batches into the repository, sends run
heartbeats, and honours flush markers so ``flush()`` returns only when every
point logged before it is durable. Each batch gets a key when it is cut from
the queue and keeps it through every retry, so a store that committed a batch
whose answer was lost does not store it again. Failed writes are retried with
backoff and kept in order. A run deleted for good costs only its own points:
a batch the store refuses for a missing run is split by run, the other runs'
points are stored, and the loss is reported at that run's next flush.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from typing import Any

from mloop.errors import BackendError, MloopError, NotFoundError
from mloop.tracking.repository import MetricRow, TrackingRepository

log = logging.getLogger("mloop.tracking")

_BATCH = 100_000
_IDLE_WAIT = 0.2
_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


class _Marker:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class BackgroundWriter:
    """Buffers metric points for one repository and writes them from a daemon thread."""

    def __init__(self, repo: TrackingRepository, heartbeat_seconds: float = 10.0) -> None:
        self.repo = repo
        self.heartbeat_seconds = heartbeat_seconds
        self.queue: deque[Any] = deque()
        self.append = self.queue.append
        self.active_runs: set[str] = set()
        self.error: MloopError | None = None  # the store failed after retries; the points are kept
        self.gone: set[str] = set()  # runs deleted for good: their points are dropped, nobody else's
        self._lost: dict[str, MloopError] = {}  # why each gone run lost points, until a flush reports it
        self._unsent: deque[tuple[str, list[MetricRow]]] = deque()  # keyed batches not yet acknowledged
        # A batch must be stored whole or not at all (a repository that sends in parts says how big a part
        # is), so that a refused batch can be split and resent without storing any point twice.
        self.batch_rows = min(_BATCH, getattr(repo, "atomic_rows", _BATCH))
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._last_heartbeat = 0.0
        _writers.add(self)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="mloop-writer", daemon=True)
                self._thread.start()

    def flush(self, timeout: float | None = 120.0, run_id: str | None = None) -> None:
        """Block until every point queued before this call is stored; raise if storing failed.

        With ``run_id``, only that run's lost points are reported (another run that is gone is not this
        caller's error); without it, any run's are.
        """
        self.start()
        marker = _Marker()
        self.queue.append(marker)
        self._wake.set()
        if not marker.done.wait(timeout):
            raise BackendError(f"Metrics could not be written within {timeout} s"
                               + (f": {self.error.message}" if self.error else "; the store is not answering."))
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        lost = self._lost.pop(run_id, None) if run_id else next(iter(self._lost.values()), None)
        if lost is not None:
            self._lost = {k: v for k, v in self._lost.items() if v is not lost}
            raise lost

    def _loop(self) -> None:
        while True:
            if not self.queue:
                self._wake.wait(_IDLE_WAIT)
                self._wake.clear()
            self._beat()
            self._drain()

    def _drain(self) -> None:
        rows: list[MetricRow] = []
        markers: list[_Marker] = []
        popleft = self.queue.popleft
        for _ in range(min(len(self.queue), self.batch_rows)):
            item = popleft()
            if item.__class__ is tuple:
                rows.append(item)
            else:
                markers.append(item)
        if rows:
            # the key is fixed now: every retry of these rows is the same batch, which the store applies once
            self._unsent.append((uuid.uuid4().hex, rows))
        while self._unsent:
            parts = self._send(*self._unsent[0])
            if parts is None:
                break  # the store is unavailable: keep this batch, in order, for the next drain
            self._unsent.popleft()
            self._unsent.extendleft(reversed(parts))
        for marker in markers:
            marker.done.set()

    def _send(self, batch_id: str, rows: list[MetricRow]) -> list[tuple[str, list[MetricRow]]] | None:
        """Store one keyed batch: [] when done, the batches to send instead, or None to try again later."""
        if self.gone:
            rows = [row for row in rows if row[0] not in self.gone]
        delay = 0.05
        for attempt in range(8):
            try:
                if rows:
                    self.repo.log_metrics(rows, batch_id=batch_id)
                return []
            except NotFoundError as exc:  # a run is gone, and nothing of this batch was stored
                return self._split_by_run(rows, exc)
            except Exception as exc:  # a busy or unreachable store: back off and retry
                if attempt == 7:
                    self.error = exc if isinstance(exc, MloopError) else BackendError(str(exc))
                    log.warning("mloop: %d metric points not written yet: %s", len(rows), exc)
                    time.sleep(1.0)
                    return None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        return None

    def _split_by_run(self, rows: list[MetricRow], exc: NotFoundError) -> list[tuple[str, list[MetricRow]]]:
        """One run's points cannot be stored; the other runs' must be, so each run is sent on its own."""
        by_run: dict[str, list[MetricRow]] = {}
        for row in rows:
            by_run.setdefault(row[0], []).append(row)
        if len(by_run) > 1:
            return [(uuid.uuid4().hex, part) for part in by_run.values()]
        run_id = rows[0][0]
        self.gone.add(run_id)
        self._lost[run_id] = exc
        log.warning("mloop: run %s no longer exists; its %d metric points (and any logged for it later) are "
                    "dropped: %s", run_id, len(rows), exc.message)
        return []

    def _beat(self) -> None:
        now = time.monotonic()
        if self.active_runs and now - self._last_heartbeat >= self.heartbeat_seconds:
            self._last_heartbeat = now
            try:
                self.repo.heartbeat(list(self.active_runs))
            except Exception as exc:  # a missed heartbeat is retried on the next beat
                log.debug("mloop: heartbeat failed: %s", exc)

    def _after_fork(self) -> None:
        self.queue = deque()
        self._unsent = deque()
        self.append = self.queue.append
        self.active_runs = set()
        self._thread = None
        self._wake = threading.Event()
        self._start_lock = threading.Lock()


def flush_all(timeout: float = 30.0) -> None:
    """Flush every writer of this process (used at interpreter exit)."""
    for writer in list(_writers):
        if writer.queue or writer.active_runs:
            try:
                writer.flush(timeout)
            except Exception as exc:
                log.warning("mloop: could not flush metrics at exit: %s", exc)


def _reset_after_fork() -> None:
    for writer in list(_writers):
        writer._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
