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


def null_row(n_features: int) -> bytes:
    """The JSON row standing for an absent entity: an event time and every value null."""
    return b"[" + b",".join([b"null"] * (n_features + 1)) + b"]"


def parse_rows(document: bytes, counts: Sequence[int], widths: Sequence[int], url: str) -> list[list[Row | None]]:
    """Split one JSON document of stored rows (``[[event_us, v0, ...], ...]``) into one list per table.

    Its shape is checked: a corrupt stored value must fail loudly, never shift later entities' values.
    """
    import orjson

    from mloop.errors import BackendError

    try:
        rows = orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise BackendError(f"The online store {url} holds a value that is not a feature row: {exc}") from None
    if not isinstance(rows, list) or len(rows) != sum(counts):
        raise BackendError(f"The online store {url} answered a malformed reply for {sum(counts)} keys")
    out, start = [], 0
    for count, width in zip(counts, widths, strict=True):
        part = rows if len(counts) == 1 else rows[start:start + count]
        if part and (set(map(type, part)) != {list} or set(map(len, part)) != {width}):
            raise BackendError(f"The online store {url} holds a row that is not {width} values (event time, features)")
        out.append(part)
        start += count
    return out
