"""UTC time, everywhere."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """Milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000


def from_ms(ms: int | None) -> datetime | None:
    """A timezone-aware UTC datetime from epoch milliseconds."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime; naive datetimes are rejected."""
    if value.tzinfo is None:
        from mloop.errors import InvalidInputError

        raise InvalidInputError(
            field="timestamp", value=value, expected="a timezone-aware datetime (e.g. tzinfo=UTC)"
        )
    return int(value.timestamp() * 1000)
