"""A small thread-safe cache whose entries live a bounded time: a revoked token stops working within ``ttl``.

>>> cache = TtlCache(ttl=10.0, max_entries=2)
>>> cache.put("a", 1); cache.get("a")
1
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

__all__ = ["TtlCache"]

_MISSING = object()


class TtlCache:
    """Entries expire ``ttl`` seconds after they were put; the least recently used go first when full."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, default: Any = None) -> Any:
        """The value under ``key`` while it is fresh, else ``default``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            if entry[0] < time.monotonic():
                del self._entries[key]
                return default
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
