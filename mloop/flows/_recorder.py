"""Write-behind for task records: the orchestrator queues them, one thread writes each batch in one transaction.

A task starts without waiting for the database; its rows follow within milliseconds, in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from mloop._util.clock import now_ms
from mloop.errors import BackendError
from mloop.flows._sql import FlowRepository

_STOP = object()


class Recorder:
    """Queue ``start``/``finish``/``attempt`` records; ``flush()`` waits until everything queued is durable."""

    def __init__(self, repo: FlowRepository) -> None:
        self.repo = repo
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._last = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="mloop-flow-recorder")
        self._thread.start()

    def _now(self) -> int:
        """Strictly increasing milliseconds, so that tasks recorded in one burst keep their order."""
        self._last = max(now_ms(), self._last + 1)
        return self._last

    def start_task(self, **values: Any) -> None:
        self._put(self.repo.start_task_in, values | {"now": self._now()})

    def finish_task(self, task_id: str, status: str, **values: Any) -> None:
        self._put(self.repo.finish_task_in, values | {"task_id": task_id, "status": status, "now": self._now()})

    def set_attempt(self, task_id: str, attempt: int) -> None:
        self._put(self.repo.set_attempt_in, {"task_id": task_id, "attempt": attempt})

    def _put(self, fn: Callable[..., None], values: dict[str, Any]) -> None:
        if self._error is not None:
            raise BackendError(f"Recording flow tasks failed: {self._error}") from self._error
        self._queue.put((fn, values))

    def flush(self) -> None:
        done = threading.Event()
        self._queue.put(done)
        while not done.wait(0.5):
            if not self._thread.is_alive():
                break
        if self._error is not None:
            raise BackendError(f"Recording flow tasks failed: {self._error}") from self._error

    def close(self) -> None:
        self.flush()
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            work = [b for b in batch if isinstance(b, tuple)]
            if work and self._error is None:
                try:
                    with self.repo.db.write() as conn:
                        for fn, values in work:
                            fn(conn, **values)
                except BaseException as exc:  # surfaced to the orchestrator on its next call
                    self._error = exc
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
            if any(item is _STOP for item in batch):
                return
