"""The Redis online store: one key per (table, entity) holding ``[event_us, v0, v1, ...]`` as JSON (orjson).

Writes are pipelined Lua batches that never move time back. A read is one EVALSHA of a small script
that MGETs every key of every table and answers a single JSON document, so a request costs one round
trip and one ``orjson.loads``, whatever the number of entities and views.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from mloop._util.optional import require
from mloop.errors import BackendError, InvalidInputError
from mloop.features.online.base import BatchReader, Reader, Row, null_row, parse_rows

_WRITE = """
for i = 1, #KEYS do
  local ts = tonumber(ARGV[2 * i - 1])
  local cur = redis.call('GET', KEYS[i])
  local cur_ts = cur and tonumber(string.match(cur, '^%[(%-?%d+)'))
  if (not cur_ts) or cur_ts <= ts then redis.call('SET', KEYS[i], ARGV[2 * i]) end
end
return #KEYS
"""
# ARGV holds, per table, its number of keys and the row of nulls standing for an absent key.
# MGET goes in slices of 1000 keys: Lua's unpack cannot spread an unbounded list.
_READ = """
local out, first = {}, 1
for t = 1, #ARGV, 2 do
  local last, empty = first + tonumber(ARGV[t]) - 1, ARGV[t + 1]
  for start = first, last, 1000 do
    local values = redis.call('MGET', unpack(KEYS, start, math.min(start + 999, last)))
    for i = 1, #values do out[#out + 1] = values[i] or empty end
  end
  first = last + 1
end
return '[' .. table.concat(out, ',') .. ']'
"""
_BATCH = 1000


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class RedisOnlineStore:
    """Latest values in Redis under ``mloop:<namespace>:<table>:<key>``."""

    def __init__(self, url: str, namespace: str = "default") -> None:
        redis = require("redis", extra="redis")
        self.url = url
        self.namespace = namespace
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5)
        self._errors = redis.exceptions
        self._script = self.client.register_script(_WRITE)
        self._read_sha = hashlib.sha1(_READ.encode()).hexdigest()

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
        except self._errors.RedisError as exc:
            raise BackendError(f"Writing to the Redis online store {self.url} failed: {exc}") from exc
        return len(keys)

    def reader(self, table: str, n_features: int) -> Reader:
        read = self.batch_reader([(table, n_features)])
        return lambda keys: read([keys])[0]

    def batch_reader(self, tables: Sequence[tuple[str, int]]) -> BatchReader:
        """Every table's keys in one EVALSHA; rows come back in the keys' order, an absent key as nulls.

        The command is packed here: redis-py's generic packer costs more than the round trip itself
        for 100 keys, and one bulk-string reply avoids parsing one reply per key in Python.
        """
        prefixes = [self._prefix(t).encode() for t, _ in tables]
        empties = [_bulk(null_row(n)) for _, n in tables]
        widths = [n + 1 for _, n in tables]
        head = b"$7\r\nEVALSHA\r\n" + _bulk(self._read_sha.encode())

        def read(key_lists: Sequence[Sequence[str]]) -> list[list[Row | None]]:
            counts = [len(k) for k in key_lists]
            total = sum(counts)
            if not total:
                return [[] for _ in key_lists]
            try:
                names = [_bulk(p + k.encode()) for p, keys in zip(prefixes, key_lists, strict=True) for k in keys]
            except UnicodeEncodeError as exc:
                raise InvalidInputError(field="entities", value=repr(exc.object)[:60],
                                        expected="entity keys that encode as UTF-8") from None
            args = [_bulk(b"%d" % total)]
            for count, empty in zip(counts, empties, strict=True):
                args += [_bulk(b"%d" % count), empty]
            packed = b"".join([b"*%d\r\n" % (total + len(args) + 2), head, args[0], *names, *args[1:]])
            return parse_rows(self._call(packed), counts, widths, self.url)

        return read

    def _call(self, packed: bytes) -> Any:
        """Send one packed EVALSHA on a pooled connection and return its reply (loading the script when the
        server does not know it, retrying once on a dropped connection)."""
        errors, pool = self._errors, self.client.connection_pool
        for attempt in range(3):
            conn = pool.get_connection()
            try:
                conn.send_packed_command([packed])
                return conn.read_response()
            except errors.NoScriptError:  # first read, or the server restarted or flushed its scripts
                self.client.script_load(_READ)
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                conn.disconnect()  # never hand a half-read reply to the next request
                if attempt:
                    raise BackendError(f"Reading the Redis online store {self.url} failed: {exc}") from exc
            except errors.RedisError as exc:
                raise BackendError(f"Reading the Redis online store {self.url} failed: {exc}") from exc
            except BaseException:
                conn.disconnect()
                raise
            finally:
                pool.release(conn)
        raise BackendError(f"Reading the Redis online store {self.url} failed: the read script did not load")

    def drop(self, table: str) -> None:
        keys = list(self.client.scan_iter(match=self._prefix(table) + "*", count=1000))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start:start + 1000])

    def close(self) -> None:
        self.client.close()
