"""A prediction cache and a circuit breaker, the two guards between a request and the model.

>>> cache = PredictionCache(ttl=60, max_entries=2)
>>> key = cache.key("3", {"km": [2.0]})
>>> cache.get(key) is None
True
>>> cache.put(key, [7.5]); cache.get(key)
[7.5]
>>> breaker = CircuitBreaker(failures=2, reset_after=30)
>>> breaker.failure(); breaker.failure(); breaker.open
True
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import orjson

__all__ = ["CircuitBreaker", "PredictionCache"]


class PredictionCache:
    """Predictions by (model version, validated input), kept ``ttl`` seconds, least recently used out first."""

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: OrderedDict[bytes, tuple[float, list[Any]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def key(self, version: str, columns: dict[str, list[Any]]) -> bytes:
        """The key of checked columns (already in the signature's order) for one version."""
        return version.encode() + b"\0" + orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY)

    def get(self, key: bytes) -> list[Any] | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            if item is not None:
                del self._items[key]
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item[1]

    def put(self, key: bytes, predictions: list[Any]) -> None:
        self._items[key] = (time.monotonic() + self.ttl, predictions)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


class CircuitBreaker:
    """Opens after ``failures`` failures or timeouts in a row; lets one trial call through after ``reset_after``."""

    def __init__(self, failures: int = 5, reset_after: float = 10.0) -> None:
        self.threshold = failures
        self.reset_after = reset_after
        self.consecutive = 0
        self.opened_at: float | None = None
        self.trips = 0

    @property
    def open(self) -> bool:
        return self.opened_at is not None

    def allow(self) -> bool:
        """Whether to call the model now (closed, or open long enough for a trial)."""
        if self.opened_at is None:
            return True
        if time.monotonic() - self.opened_at >= self.reset_after:
            self.opened_at = time.monotonic()  # one trial per period
            return True
        return False

    def success(self) -> None:
        self.consecutive = 0
        self.opened_at = None

    def failure(self) -> None:
        self.consecutive += 1
        if self.consecutive >= self.threshold and self.opened_at is None:
            self.opened_at = time.monotonic()
            self.trips += 1

    def state(self) -> dict[str, Any]:
        return {"open": self.open, "consecutive_failures": self.consecutive, "trips": self.trips}
