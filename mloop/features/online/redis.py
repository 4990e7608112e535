"""The Redis online store: one key per (table, entity) holding ``[event_us, v0, v1, ...]`` as JSON (orjson);
reads are one MGET (one round trip), writes are pipelined Lua batches that never move time back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from mloop._util.optional import require
from mloop.errors import BackendError
from mloop.features.online.base import BatchReader, Reader

_WRITE = """
for i = 1, #KEYS do
  local ts = tonumber(ARGV[2 * i - 1])
  local cur = redis.call('GET', KEYS[i])
  local cur_ts = cur and tonumber(string.match(cur, '^%[(%-?%d+)'))
  if (not cur_ts) or cur_ts <= ts then redis.call('SET', KEYS[i], ARGV[2 * i]) end
end
return #KEYS
"""
_BATCH = 1000


class RedisOnlineStore:
    """Latest values in Redis under ``mloop:<namespace>:<table>:<key>``."""

    def __init__(self, url: str, namespace: str = "default") -> None:
        redis = require("redis", extra="redis")
        self.url = url
        self.namespace = namespace
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5)
        self._script = self.client.register_script(_WRITE)

    def _prefix(self, table: str) -> str:
        return f"mloop:{self.namespace}:{table}:"

    def write(self, table: str, n_features: int, keys: Sequence[str], event_us: Sequence[int],
              columns: Sequence[Sequence[Any]]) -> int:
        prefix = self._prefix(table)
        try:
            pipe = self.client.pipeline(transaction=False)
            rows = list(zip(keys, event_us, *columns, strict=True))
            for start in range(0, len(rows), _BATCH):
                chunk = rows[start:start + _BATCH]
                args: list[Any] = []
                for row in chunk:
                    args.append(int(row[1]))
                    # orjson writes NaN as null, like a missing value
                    args.append(orjson.dumps([int(row[1]), *row[2:]], default=str))
                self._script(keys=[prefix + str(r[0]) for r in chunk], args=args, client=pipe)
            pipe.execute()
        except Exception as exc:
            if type(exc).__module__.startswith("redis"):
                raise BackendError(f"Writing to the Redis online store {self.url} failed: {exc}") from exc
            raise
        return len(keys)

    def reader(self, table: str, n_features: int) -> Reader:
        prefix = self._prefix(table)
        client = self.client
        loads = orjson.loads

        def read(keys: Sequence[str]) -> list[tuple[Any, ...] | None]:
            try:
                raw = client.mget([prefix + k for k in keys])
            except Exception as exc:
                raise BackendError(f"Reading the Redis online store {self.url} failed: {exc}") from exc
            return [tuple(loads(v)) if v is not None else None for v in raw]

        return read

    def batch_reader(self, tables: Sequence[tuple[str, int]]) -> BatchReader:
        """Every table's keys in one MGET: one round trip per request, however many views."""
        client = self.client
        loads = orjson.loads
        prefixes = [self._prefix(t) for t, _ in tables]
        url = self.url

        def read(key_lists: Sequence[Sequence[str]]) -> list[list[tuple[Any, ...] | None]]:
            names = [p + k for p, keys in zip(prefixes, key_lists, strict=True) for k in keys]
            try:
                raw = client.mget(names)
            except Exception as exc:
                raise BackendError(f"Reading the Redis online store {url} failed: {exc}") from exc
            out, i = [], 0
            for keys in key_lists:
                out.append([tuple(loads(v)) if v is not None else None for v in raw[i:i + len(keys)]])
                i += len(keys)
            return out

        return read

    def drop(self, table: str) -> None:
        keys = list(self.client.scan_iter(match=self._prefix(table) + "*", count=1000))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start:start + 1000])

    def close(self) -> None:
        self.client.close()
