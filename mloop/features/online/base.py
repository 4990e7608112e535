"""The online store protocol: bulk, monotonic writes and a compiled reader per serving plan."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

# A row as stored: (event_time_us, value_0, value_1, ...) (a tuple or a list).
Row = Sequence[Any]
# A reader takes encoded entity keys and returns one row per key, in the keys' order (None when absent).
Reader = Callable[[Sequence[str]], list[Row | None]]
# A batch reader takes one key list per table and answers them all (one round trip on remote stores).
BatchReader = Callable[[Sequence[Sequence[str]]], list[list[Row | None]]]


class OnlineStore(Protocol):
    """Where materialized features live for low-latency reads.

    Only the latest row of each entity is kept (no history). Writes are monotonic: a row
    replaces the stored one only when its event time is at least as recent, so re-running a
    materialization or late rows never move time back.
    """

    url: str

    def write(self, table: str, n_features: int, keys: Sequence[str], event_us: Sequence[int],
              columns: Sequence[Sequence[Any]]) -> int:
        """Upsert rows (``columns`` holds one list per feature); returns the number of rows sent."""

    def reader(self, table: str, n_features: int) -> Reader:
        """A function reading many keys in one round trip, built once and reused per request."""

    def batch_reader(self, tables: Sequence[tuple[str, int]]) -> BatchReader:
        """A function reading keys from several ``(table, n_features)`` at once, built once per serving plan."""

    def drop(self, table: str) -> None:
        """Remove a table and every value in it."""

    def close(self) -> None:
        """Release connections."""
