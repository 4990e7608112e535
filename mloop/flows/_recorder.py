"""Write-behind for the run's records: the orchestrator queues them, one thread writes each batch in one
transaction (one request to a server).

The thread also opens the metadata database (importing SQLAlchemy takes a good part of a second) and creates
the run, so the first task starts while that happens; task rows follow within milliseconds, in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mloop._util.clock import now_ms
from mloop.errors import BackendError, MloopError

if TYPE_CHECKING:
    from mloop.flows.repository import FlowRepository, Record

_STOP = object()


class Recorder:
    """Queue records; ``flush()`` waits until everything queued is durable (or raises what went wrong)."""

    def __init__(self, open_repo: Callable[[], FlowRepository]) -> None:
        self._open_repo = open_repo
        self._repo: FlowRepository | None = None
        self._ready = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._last = 0
        self.experiment_id = ""
        self._thread = threading.Thread(target=self._run, daemon=True, name="mloop-flow-recorder")
        self._thread.start()

    @property
    def repo(self) -> FlowRepository:
        """The repository, once the thread has opened it (waits for it)."""
        self._ready.wait()
        self._raise()
        assert self._repo is not None
        return self._repo

    def _now(self) -> int:
        """Strictly increasing milliseconds, so that tasks recorded in one burst keep their order."""
        self._last = max(now_ms(), self._last + 1)
        return self._last

    # ---------------------------------------------------------------- what the orchestrator records
    def call(self, fn: Callable[[FlowRepository], Any]) -> None:
        """Run ``fn(repo)`` in the thread, in order with the rest (in its own transactions)."""
        self._put(("call", fn))

    def start_task(self, **values: Any) -> None:
        values["now"] = self._now()
        self._put(("start_task", values))  # its experiment is filled in when written, after the run's

    def finish_task(self, task_id: str, status: str, **values: Any) -> None:
        values |= {"task_id": task_id, "status": status, "now": self._now()}
        self._put(("finish_task", values))

    def set_attempt(self, task_id: str, attempt: int) -> None:
        self._put(("set_attempt", {"task_id": task_id, "attempt": attempt}))

    def _put(self, item: Any) -> None:
        self._raise()
        self._queue.put(item)

    def _raise(self) -> None:
        if self._error is not None:
            if isinstance(self._error, MloopError):
                raise self._error
            raise BackendError(f"Recording the flow run failed: {self._error}") from self._error

    def flush(self) -> None:
        done = threading.Event()
        self._queue.put(done)
        while not done.wait(0.5):
            if not self._thread.is_alive():
                break
        self._raise()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)

    # ---------------------------------------------------------------- the thread
    def _run(self) -> None:
        try:
            self._repo = self._open_repo()
        except BaseException as exc:  # surfaced to the orchestrator on its next call
            self._error = exc
        finally:
            self._ready.set()
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if self._error is None:
                try:
                    self._write(batch)
                except BaseException as exc:
                    self._error = exc
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
            if any(item is _STOP for item in batch):
                return

    def _write(self, batch: list[Any]) -> None:
        assert self._repo is not None
        pending: list[Record] = []
        for item in [*batch, None]:
            if isinstance(item, tuple) and item[0] != "call":
                kind, values = item
                if kind == "start_task":
                    values = {**values, "experiment_id": self.experiment_id}
                pending.append((kind, values))
                continue
            if pending:
                self._repo.record(pending)
                pending = []
            if isinstance(item, tuple):
                item[1](self._repo)
