"""The background writer: logging calls append to a queue and return at once.

A daemon thread drains the queue in batches into the repository and sends run
heartbeats; ``flush()`` drains what is left in the caller's thread (taking turns
with the daemon) and returns only when every point logged before it is durable
or refused. Each batch gets a key when it is cut from
the queue and keeps it through every retry, so a store that committed a batch
whose answer was lost does not store it again. Failed writes are retried with
backoff and kept in order. A run deleted for good costs only its own points:
a batch the store refuses for a missing run is split by run, the other runs'
points are stored, and the loss is reported at that run's next flush.

Params and tags travel the same queue as ``RunData`` items: merged per run, they are written in one
call per run and batch. A param the store refuses (another process stored a different value, or the
run has ended) costs only that param: the run's other params are stored and the refusal is raised
by that run's next flush (its end included).
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

from mloop.errors import BackendError, ConflictError, MloopError, NotFoundError
from mloop.tracking.repository import MetricRow, TrackingRepository

log = logging.getLogger("mloop.tracking")

_BATCH = 6 * 16_384  # six full INSERTs on SQLite (see tracking._bulk), without a short last one
_IDLE_WAIT = 0.2
_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


class RunData:
    """Params (``kind="params"``) or tags (``kind="tags"``) of one run, queued beside metric points."""

    __slots__ = ("kind", "run_id", "values")

    def __init__(self, kind: str, run_id: str, values: dict[str, Any]) -> None:
        self.kind, self.run_id, self.values = kind, run_id, values


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
        self._unsent_data: dict[tuple[str, str], dict[str, Any]] = {}  # (kind, run_id) -> params or tags to write
        self._busy = False  # the thread holds items it took from the queue and has not yet stored
        # A batch must be stored whole or not at all (a repository that sends in parts says how big a part
        # is), so that a refused batch can be split and resent without storing any point twice.
        self.batch_rows = min(_BATCH, getattr(repo, "atomic_rows", _BATCH))
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._drain_lock = threading.Lock()  # one drainer at a time, so that items are stored in order
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
        self.settle(timeout)
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        lost = self._lost.pop(run_id, None) if run_id else next(iter(self._lost.values()), None)
        if lost is not None:
            self._lost = {k: v for k, v in self._lost.items() if v is not lost}
            raise lost

    def pending(self) -> bool:
        """True while something logged is not yet stored (or refused)."""
        # a drainer marks itself busy before it takes items, so an empty queue read here is never a
        # batch in flight unnoticed
        return bool(self.queue) or self._busy or bool(self._unsent) or bool(self._unsent_data)

    def settle(self, timeout: float | None = 120.0) -> None:
        """Store (or have refused) everything queued before this call; never raises (``flush`` does).

        The calling thread drains the queue itself, taking turns with the writer thread: handing the
        work over and waiting for the answer cost milliseconds of thread switching per call, which a
        loop of short runs paid at every end. Reads call this so that a run read back in this process
        shows what it logged.
        """
        if not self.pending():
            return
        if not self._drain_lock.acquire(timeout=-1 if timeout is None else timeout):
            if self.error is None:
                self.error = BackendError(f"Metrics could not be written within {timeout} s; "
                                          "the store is not answering.")
            return
        try:
            self._busy = True
            remaining = len(self.queue)  # what was queued before this call; later items are not waited for
            while True:
                remaining -= self._drain_queue()
                if remaining <= 0 or self._unsent or self._unsent_data:  # done, or the store is unavailable
                    break
        finally:
            self._busy = False
            self._drain_lock.release()

    def _loop(self) -> None:
        while True:
            if not self.queue:
                self._wake.wait(_IDLE_WAIT)
                self._wake.clear()
            self._beat()
            self._drain()

    def _drain(self) -> None:
        with self._drain_lock:
            self._busy = True
            try:
                self._drain_queue()
            finally:
                self._busy = False

    def _drain_queue(self) -> int:
        """Store one batch from the queue (and what earlier drains could not); the number of items taken."""
        rows: list[MetricRow] = []
        data = self._unsent_data
        popleft = self.queue.popleft
        taken = min(len(self.queue), self.batch_rows)
        for _ in range(taken):
            item = popleft()
            if item.__class__ is tuple:
                rows.append(item)
            else:  # RunData
                merged = data.get((item.kind, item.run_id))
                if merged is None:
                    data[item.kind, item.run_id] = dict(item.values)
                else:
                    merged.update(item.values)
        if rows:
            # the key is fixed now: every retry of these rows is the same batch, which the store applies once
            self._unsent.append((uuid.uuid4().hex, rows))
        stored = self._send_data()
        while stored and self._unsent:
            parts = self._send(*self._unsent[0])
            if parts is None:
                break  # the store is unavailable: keep this batch, in order, for the next drain
            self._unsent.popleft()
            self._unsent.extendleft(reversed(parts))
        return taken

    def _send_data(self) -> bool:
        """Write the queued params and tags, one call per run and kind; False when the store is unavailable."""
        while self._unsent_data:
            (kind, run_id), values = next(iter(self._unsent_data.items()))
            if run_id not in self.gone:
                write = self.repo.log_params if kind == "params" else self.repo.set_tags
                if not self._retrying(self._write_data, (write, kind, run_id, values), f"{len(values)} {kind}"):
                    return False
            del self._unsent_data[kind, run_id]
        return True

    def _write_data(self, write: Any, kind: str, run_id: str, values: dict[str, Any]) -> None:
        try:
            write(run_id, values)
        except NotFoundError as exc:
            self._drop_run(run_id, exc, f"its {kind}")
        except ConflictError as exc:
            if exc.field == "run_id":  # the run has ended: it takes nothing more
                self._drop_run(run_id, exc, f"its {kind}")
            elif len(values) > 1 and kind == "params":
                for key, value in values.items():  # store the others; report the one that conflicts
                    self._write_data(write, kind, run_id, {key: value})
                return
            self._lost.setdefault(run_id, exc)
            log.warning("mloop: run %s refused %s: %s", run_id, kind, exc.message)

    def _retrying(self, attempt: Any, args: tuple[Any, ...], what: str) -> bool:
        """Run ``attempt(*args)`` with backoff through a busy or unreachable store; False when it still fails."""
        delay = 0.05
        for tries in range(8):
            try:
                attempt(*args)
                return True
            except Exception as exc:
                if tries == 7:
                    self.error = exc if isinstance(exc, MloopError) else BackendError(str(exc))
                    log.warning("mloop: %s not written yet: %s", what, exc)
                    time.sleep(1.0)
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        return False  # pragma: no cover

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
            except (NotFoundError, ConflictError) as exc:  # a run is gone or ended: nothing of this batch was stored
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

    def _split_by_run(self, rows: list[MetricRow], exc: MloopError) -> list[tuple[str, list[MetricRow]]]:
        """One run's points cannot be stored; the other runs' must be, so each run is sent on its own."""
        by_run: dict[str, list[MetricRow]] = {}
        for row in rows:
            by_run.setdefault(row[0], []).append(row)
        if len(by_run) > 1:
            return [(uuid.uuid4().hex, part) for part in by_run.values()]
        self._drop_run(rows[0][0], exc, f"its {len(rows)} metric points")
        return []

    def _drop_run(self, run_id: str, exc: MloopError, what: str) -> None:
        """A run the store will never take data for (deleted for good, or ended elsewhere)."""
        self.gone.add(run_id)
        self._lost.setdefault(run_id, exc)
        log.warning("mloop: run %s cannot take data any more; %s (and anything logged for it later) are "
                    "dropped: %s", run_id, what, exc.message)

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
        self._unsent_data = {}
        self._busy = False
        self.append = self.queue.append
        self.active_runs = set()
        self._thread = None
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._drain_lock = threading.Lock()


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
