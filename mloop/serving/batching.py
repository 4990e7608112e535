"""Adaptive micro-batching: concurrent requests to one model share one model call.

Requests queue their checked columns; one worker takes what is waiting (up to
``max_batch_size`` rows), waits at most ``max_wait`` for more only while the batch is
not full, runs the model once in a worker thread and hands each request its slice.
Under light load a request waits at most ``max_wait``; under heavy load the batches
fill up while the previous one runs, so the wait costs nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mloop.serving._inputs import Columns

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Batch ``predict(columns) -> list`` calls; ``on_batch(size)`` is told each batch's rows."""

    def __init__(self, predict: Callable[[Columns], tuple[list[Any], Any]], *, max_batch_size: int = 64,
                 max_wait: float = 0.002, on_batch: Callable[[int], None] | None = None) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self.on_batch = on_batch
        self._queue: deque[tuple[Columns, int, asyncio.Future[Any]]] = deque()
        self._rows = 0
        self._wake: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="mloop-batch")

    async def submit(self, columns: Columns, n: int) -> tuple[list[Any], Any]:
        """The predictions for these rows (and what the predict function returned beside them)."""
        if self._task is None:
            self._start()
        assert self._wake is not None and self._full is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((columns, n, future))
        self._rows += n
        self._wake.set()
        if self._rows >= self.max_batch_size:
            self._full.set()
        return await future

    def _start(self) -> None:
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        assert self._wake is not None and self._full is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if self._rows < self.max_batch_size and self.max_wait > 0:
                try:
                    await asyncio.wait_for(self._full.wait(), self.max_wait)
                except TimeoutError:
                    pass
            batch = self._take()
            if not self._queue:
                self._wake.clear()
            if self._rows < self.max_batch_size:
                self._full.clear()
            if not batch:
                continue
            merged, total = _merge(batch)
            if self.on_batch is not None:
                self.on_batch(total)
            try:
                predictions, extra = await loop.run_in_executor(self._executor, self.predict, merged)
            except BaseException as exc:  # every waiting request gets the error, the worker goes on
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            start = 0
            for _, n, future in batch:
                if not future.done():
                    future.set_result((predictions[start:start + n], extra))
                start += n

    def _take(self) -> list[tuple[Columns, int, asyncio.Future[Any]]]:
        batch, rows = [], 0
        while self._queue and (not batch or rows + self._queue[0][1] <= self.max_batch_size):
            item = self._queue.popleft()
            batch.append(item)
            rows += item[1]
        self._rows -= rows
        return batch

    def retire(self, grace: float = 30.0) -> None:
        """From any thread: close this batcher ``grace`` seconds from now, on its own event loop, so a request
        that picked it just before it was swapped out still gets its answer."""
        if self._task is None:
            self._executor.shutdown(wait=False)
            return
        loop = self._task.get_loop()
        loop.call_soon_threadsafe(lambda: loop.call_later(grace, lambda: loop.create_task(self.close())))

    async def close(self) -> None:
        """Finish what is queued, then stop the worker."""
        while self._queue:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self._executor.shutdown(wait=True)


def _merge(batch: list[tuple[Columns, int, Any]]) -> tuple[Columns, int]:
    if len(batch) == 1:
        return batch[0][0], batch[0][1]
    merged: Columns = {name: [] for name in batch[0][0]}
    for columns, _, _ in batch:
        for name, values in merged.items():
            values.extend(columns[name])
    return merged, sum(n for _, n, _ in batch)
