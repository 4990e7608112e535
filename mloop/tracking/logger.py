"""The background writer: logging calls append to a queue and return at once.

A daemon thread drains the queue in batches into the repository, sends run
heartbeats, and honours flush markers so ``flush()`` returns only when every
point logged before it is durable. Failed writes are retried with backoff and
kept in order; a write that can never succeed (its run is gone) is reported
at the next flush.
"""

from __future__ import annotations

import logging
import os
import threading
import time
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
        self.error: MloopError | None = None
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

    def flush(self, timeout: float | None = 120.0) -> None:
        """Block until every point queued before this call is stored; raise if storing failed."""
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

    def _loop(self) -> None:
        while True:
            if not self.queue:
                self._wake.wait(_IDLE_WAIT)
                self._wake.clear()
            self._beat()
            self._drain()

    def _drain(self) -> None:
        batch: list[MetricRow] = []
        markers: list[_Marker] = []
        popleft = self.queue.popleft
        for _ in range(min(len(self.queue), _BATCH)):
            item = popleft()
            if item.__class__ is tuple:
                batch.append(item)
            else:
                markers.append(item)
        if batch:
            self._write(batch)
        for marker in markers:
            marker.done.set()

    def _write(self, batch: list[MetricRow]) -> None:
        delay = 0.05
        for attempt in range(8):
            try:
                self.repo.log_metrics(batch)
                return
            except NotFoundError as exc:
                self.error = exc  # permanent: the run is gone
                return
            except Exception as exc:  # a busy or unreachable store: back off and retry
                if attempt == 7:
                    self.error = exc if isinstance(exc, MloopError) else BackendError(str(exc))
                    log.warning("mloop: %d metric points not written yet: %s", len(batch), exc)
                    self.queue.extendleft(reversed(batch))  # keep them, in order, for the next try
                    time.sleep(1.0)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

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
