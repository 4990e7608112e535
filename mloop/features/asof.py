"""The NumPy plan of the point-in-time join: one join key, one local Parquet file.

DuckDB's plans spend most of their time on a hash or ASOF join run on one thread. With a single
join key the same answer comes from one sort of 64-bit integers: each feature row is packed as
``key code | event time | row number`` (the event time counted in the coarsest unit that divides
every time, so it fits), the array is sorted, and each entity row finds its match with one
``searchsorted``: the last packed value at or below ``key code | entity time``. Ties on
(key, event time) are rare, so they are put in created-time order afterwards, only where they
occur (a row without a created time loses). The TTL is checked on the exact nanoseconds.

Only the key and time columns are read here (with Arrow's threads); the plan answers, per entity
row, the matched row's number in the file (-1: none) for ``_payload.take_rows``. It declines
(returns None) whatever it cannot answer exactly as DuckDB would, and the DuckDB plan runs instead:
several keys, naive times read in a zone, keys of mismatched or unsupported types, packed values
that would not fit 64 bits, times outside 1677-2262.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

__all__ = ["asof_rows", "int_values"]

_UNIT_NS = {"s": 10 ** 9, "ms": 10 ** 6, "us": 10 ** 3, "ns": 1}
_PARQUET_UNIT_NS = {"MILLIS": 10 ** 6, "MICROS": 10 ** 3, "NANOS": 1, "milliseconds": 10 ** 6,
                    "microseconds": 10 ** 3, "nanoseconds": 1}
_NO_CREATED = np.iinfo(np.int64).min  # loses every tie, as in the DuckDB plans
_LARGEST = np.iinfo(np.int64).max
_STEPS = (10 ** 9, 10 ** 6, 10 ** 3)  # seconds, milliseconds, microseconds (else nanoseconds)


def int_values(column: pa.ChunkedArray | pa.Array, widen: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(values as int64, validity) of an integer, timestamp or dictionary column, read from Arrow's
    buffers without a compute call (a null's value is whatever the buffer holds; ``widen=False``:
    one chunk keeps its own integer type, without a copy).

    >>> values, valid = int_values(pa.chunked_array([[3, None], [5]]))
    >>> values[valid].tolist(), valid.tolist()
    ([3, 5], [True, False, True])
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    values, valid = [], []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.indices
        kind = chunk.type
        dtype = np.dtype(np.int64) if pa.types.is_timestamp(kind) else np.dtype(kind.to_pandas_dtype())
        end = chunk.offset + len(chunk)
        buffer = chunk.buffers()[1]
        raw = np.frombuffer(buffer, dtype=dtype, count=end)[chunk.offset:] if buffer is not None else \
            np.zeros(len(chunk), dtype)
        values.append(raw.astype(np.int64, copy=False) if widen or len(chunks) > 1 else raw)
        bitmap = chunk.buffers()[0]
        if chunk.null_count and bitmap is not None:
            bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), count=end, bitorder="little")[chunk.offset:]
            valid.append(bits.view(bool))
        else:
            valid.append(np.full(len(chunk), chunk.null_count == 0))
    if len(values) == 1:
        return values[0], valid[0]
    if not values:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    return np.concatenate(values), np.concatenate(valid)


def times_ns(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """(nanoseconds since 1970, validity) of a timestamp column of any unit; None outside 1677-2262.

    >>> t = pa.array([1, None], pa.timestamp("s", tz="UTC"))
    >>> times_ns(t)[0][:1].tolist()
    [1000000000]
    """
    values, valid = int_values(column)
    factor = _UNIT_NS[column.type.unit]
    if factor == 1 or not len(values):
        return values, valid
    limit = np.iinfo(np.int64).max // factor
    if np.abs(np.where(valid, values, 0)).max() > limit:
        return None
    return values * factor, valid


def asof_rows(path: str, key: str, timestamp: str, created: str | None, ttl_ns: int | None,
              entity_keys: pa.ChunkedArray, entity_ns: np.ndarray, entity_ok: np.ndarray) -> np.ndarray | None:
    """Per entity row, the number in the file ``path`` of its point-in-time match (-1: none), or None
    when this plan cannot answer (see the module doc).

    ``entity_ns``/``entity_ok``: the entity rows' times in nanoseconds and whether each has one.
    """
    import pyarrow.parquet as pq

    schema = pq.read_schema(path, memory_map=True)
    names = [key, timestamp, *([created] if created else [])]
    if any(n not in schema.names for n in names) or len(set(names)) < len(names):
        return None
    if not all(pa.types.is_timestamp(schema.field(n).type) for n in names[1:]):
        return None
    valid_times = entity_ns[entity_ok]
    if not len(valid_times):
        return np.full(len(entity_ns), -1, np.int64)
    low = None if ttl_ns is None else int(valid_times.min()) - ttl_ns
    high = int(valid_times.max())
    asked = _asked_keys(schema.field(key).type, entity_keys)
    if asked is None:
        return None
    string_key = asked[0] is not None
    parquet = pq.ParquetFile(path, memory_map=True, read_dictionary=[key] if string_key else None, pre_buffer=False)
    groups, file_rows = _row_groups(parquet, timestamp, low, high)
    read = _read(parquet, groups, names, (low, high), asked[0]) if groups else None
    if read is None:
        return None if groups else np.full(len(entity_ns), -1, np.int64)
    keys, event_ns, keep, made = read
    codes = asked[1] if string_key else _int_codes(keys, keep, entity_keys)
    if codes is None:
        return None
    found = _match(_Features(keys, codes[0], codes[1], event_ns, keep, made), codes[2], codes[3] & entity_ok,
                   entity_ns)
    if found is None:
        return None
    match, matched_ns = found
    if not (match >= 0).any():
        return match
    if ttl_ns is not None:
        match = np.where((match >= 0) & (matched_ns >= entity_ns - ttl_ns), match, -1)
    return match if file_rows is None else np.where(match >= 0, file_rows[np.maximum(match, 0)], -1)


def _row_groups(parquet: Any, timestamp: str, low: int | None, high: int | None) -> tuple[list[int], Any]:
    """The row groups whose event times can fall in [low, high] (by their statistics), and the file row
    number of each row read (None: every group is read, so the numbers are the read order)."""
    meta = parquet.metadata
    leaves = [parquet.schema.column(i).path for i in range(len(parquet.schema))]
    column = leaves.index(timestamp) if timestamp in leaves else -1
    logical = json.loads(parquet.schema.column(column).logical_type.to_json()) if column >= 0 else {}
    factor = _PARQUET_UNIT_NS.get(logical.get("timeUnit", ""))
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    groups = []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(column).statistics if factor else None
        if stats is not None and stats.has_min_max and isinstance(stats.min_raw, int):
            if high is not None and stats.min_raw * factor > high:
                continue
            if low is not None and stats.max_raw * factor < low:
                continue
        groups.append(g)
    if len(groups) == len(sizes):
        return groups, None
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    parts = [np.arange(starts[g], starts[g] + sizes[g], dtype=np.int64) for g in groups]
    return groups, np.concatenate(parts) if parts else np.zeros(0, np.int64)


_BATCH_ROWS = 1 << 16  # rows decoded at a time: the batch's memory is reused by the next one


def _read(parquet: Any, groups: list[int], names: list[str], window: tuple[int | None, int],
          asked: pa.Array | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(keys, event times in ns, which rows take part, created times in ns or ``_NO_CREATED``) of the rows
    of ``groups``, or None when a time lies outside 1677-2262.

    Decoded a batch at a time straight into arrays of their own, so no column is ever held whole by Arrow
    and then copied (a file of several row groups gives chunks that would be concatenated): in a fresh
    process every new page costs a fault, and that is most of what a first call pays. With ``asked`` (the
    entity rows' distinct string keys) a key is its place among them, and a row whose key no entity row
    asks for takes no part; integer keys are coded afterwards (``_int_codes``).
    """
    count = sum(parquet.metadata.row_group(g).num_rows for g in groups)
    keys, event_ns, keep = np.empty(count, np.int64), np.empty(count, np.int64), np.empty(count, bool)
    made = np.empty(count, np.int64) if len(names) > 2 else None
    low, high = window
    at = 0
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, row_groups=groups, columns=names, use_threads=True):
        end = at + batch.num_rows
        event = times_ns(batch.column(names[1]))
        created = times_ns(batch.column(names[2])) if made is not None else None
        if event is None or (made is not None and created is None):
            return None
        key_ok = _string_codes(batch.column(names[0]), asked, keys[at:end]) if asked is not None else \
            _copy_ints(batch.column(names[0]), keys[at:end])
        times, ok = event
        event_ns[at:end] = times
        np.logical_and(key_ok, ok, out=keep[at:end])
        keep[at:end] &= times <= high
        if low is not None:
            keep[at:end] &= times >= low
        if made is not None and created is not None:
            np.copyto(made[at:end], np.where(created[1], created[0], _NO_CREATED))
        at = end
    return keys, event_ns, keep, made


def _copy_ints(column: pa.Array, out: np.ndarray) -> np.ndarray:
    """Copy an integer key column into ``out`` (int64); its validity."""
    values, valid = int_values(column)
    out[:] = values
    return valid


def _string_codes(column: pa.Array, asked: pa.Array, out: np.ndarray) -> np.ndarray:
    """Write each row's key as its place in ``asked`` into ``out``; whether it has one (a key no entity row
    asks for, or a null, has none). A dictionary column looks up its dictionary once, not every row."""
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        if not len(column.dictionary):  # every key of the batch is null
            out[:] = -1
            return np.zeros(len(column), bool)
        places, found = int_values(pc.index_in(column.dictionary, value_set=asked.cast(column.dictionary.type)))
        places = np.where(found, places, -1)
        indices, valid = int_values(column.indices)
        np.take(places, np.where(valid, indices, 0), out=out)
        return valid & (out >= 0)
    places, found = int_values(pc.index_in(column, value_set=asked.cast(column.type)))
    out[:] = places
    return found


def _asked_keys(mine: pa.DataType, entity_keys: pa.ChunkedArray) -> tuple[Any, ...] | None:
    """For a string key: (the entity rows' distinct keys, 0, their number, each entity row's code, found);
    for an integer key (None,); None for key types this plan leaves to DuckDB."""
    import pyarrow.compute as pc

    theirs = entity_keys.type
    if pa.types.is_dictionary(theirs):
        entity_keys, theirs = entity_keys.cast(theirs.value_type), theirs.value_type
    if _is_string(mine):
        if not _is_string(theirs):
            return None
        asked = pc.unique(entity_keys.cast(mine))
        asked = asked.combine_chunks() if isinstance(asked, pa.ChunkedArray) else asked
        asked = asked.filter(asked.is_valid())
        places, found = int_values(pc.index_in(entity_keys.cast(mine), value_set=asked))
        return asked, (0, max(len(asked), 1), np.where(found, places, 0), found)
    return (None,) if _plain_int(mine) and _plain_int(theirs) else None


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _int_codes(keys: np.ndarray, keep: np.ndarray, entity_keys: pa.ChunkedArray) -> tuple[Any, ...] | None:
    """(the smallest key, number of codes, entity codes, found) for integer keys, in place: a feature row's
    code is its key less the smallest (computed where it is packed); keys too far apart for that are
    dictionary-encoded, in ``keys`` itself."""
    import pyarrow.compute as pc

    if pa.types.is_dictionary(entity_keys.type):
        entity_keys = entity_keys.cast(entity_keys.type.value_type)
    if not keep.any():
        return 0, 1, np.zeros(len(entity_keys), np.int64), np.zeros(len(entity_keys), bool)
    low = int(np.min(keys, where=keep, initial=_LARGEST))
    high = int(np.max(keys, where=keep, initial=np.iinfo(np.int64).min))
    if (high - low).bit_length() <= 32:  # a dense range: the key less the smallest is the code
        asked, asked_ok = int_values(entity_keys)
        asked_ok = asked_ok & (asked >= low) & (asked <= high)
        return low, high - low + 1, np.where(asked_ok, asked - low, 0), asked_ok
    encoded = pc.dictionary_encode(pa.array(keys, mask=~keep))
    found = pc.index_in(entity_keys.cast(pa.int64()), value_set=encoded.dictionary)
    indices, _ = int_values(encoded.indices)
    keys[:] = indices
    places, found_ok = int_values(found)
    return 0, len(encoded.dictionary), np.where(found_ok, places, 0), found_ok


def _plain_int(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) and kind != pa.uint64()


class _Features(NamedTuple):
    """The feature rows read: key values (a row's code is its value less ``key_low``) and event times
    (ns), both overwritten when packed; the number of codes, which rows take part, and the created times
    (ns, ``_NO_CREATED`` for none) if any."""

    key_values: np.ndarray
    key_low: int
    code_count: int
    event_ns: np.ndarray
    keep: np.ndarray
    created: np.ndarray | None


_BLOCK = 1 << 16  # rows per block where a whole-column temporary would cost fresh pages


def _match(rows: _Features, entity_codes: np.ndarray, entity_ok: np.ndarray,
           entity_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per entity row, the read row with the same code and the latest (event time, created time) at or
    before the entity time (-1 for none), and that row's event time in ns; None when the packed values
    would not fit.

    The key and event-time arrays are packed in place, so no whole-column temporary is made: in a fresh
    process every new page costs a fault, and that, more than the arithmetic, is what a first call pays for.
    """
    keep = rows.keep
    if not keep.any():
        return np.full(len(entity_ns), -1, np.int64), np.zeros(len(entity_ns), np.int64)
    everything = bool(keep.all())
    base = int(rows.event_ns.min() if everything else np.min(rows.event_ns, where=keep, initial=_LARGEST))
    scratch = np.subtract(rows.event_ns, base, out=rows.event_ns)  # offsets, then the low bits of the packing
    step = _step(scratch, None if everything else keep)
    if step > 1:
        np.floor_divide(scratch, step, out=scratch)
    span_bits = max(int(np.max(scratch, where=keep, initial=0)).bit_length(), 1)
    code_bits = max(int(rows.code_count - 1).bit_length(), 1)
    row_bits = max(int(len(keep) - 1).bit_length(), 1)
    if code_bits + span_bits > 62:
        return None
    packed = np.subtract(rows.key_values, rows.key_low, out=rows.key_values)  # the keys are ours: in place
    if code_bits + span_bits + row_bits <= 62:  # row number in the low bits: a plain sort, no argsort
        np.left_shift(packed, span_bits + row_bits, out=packed)
        np.left_shift(scratch, row_bits, out=scratch)
        packed |= scratch
        for first in range(0, len(packed), _BLOCK):
            packed[first:first + _BLOCK] |= np.arange(first, min(first + _BLOCK, len(packed)))
        if not everything:  # rows left out sort last, above every probe, and are cut off
            packed[~keep] = _LARGEST
        packed.sort()
        packed = packed if everything else packed[:int(np.count_nonzero(keep))]
        read_rows = np.bitwise_and(packed, (1 << row_bits) - 1, out=scratch[:len(packed)])
        ordered = np.right_shift(packed, row_bits, out=packed)
    else:
        np.left_shift(packed, span_bits, out=packed)
        packed |= scratch
        candidates = np.arange(len(packed), dtype=np.int64) if everything else np.flatnonzero(keep)
        read_rows = candidates[np.argsort(packed[candidates], kind="stable")]
        ordered = packed[read_rows]
    if rows.created is not None:
        _created_last(ordered, read_rows, rows.created)
    return _probe(ordered, read_rows, span_bits, base, step, entity_codes, entity_ok, entity_ns)


def _step(offsets: np.ndarray, keep: np.ndarray | None) -> int:
    """The coarsest of 1 s, 1 ms, 1 us that divides every kept offset, else 1 (ns): fewer bits for
    the time, so the packed sort fits. Tried on a sample first, then block by block."""
    for step in _STEPS:
        if _divides(offsets[:1024], None if keep is None else keep[:1024], step) and all(
                _divides(offsets[i:i + _BLOCK], None if keep is None else keep[i:i + _BLOCK], step)
                for i in range(0, len(offsets), _BLOCK)):
            return step
    return 1


def _divides(offsets: np.ndarray, keep: np.ndarray | None, step: int) -> bool:
    rest = offsets % step
    return not (rest.any() if keep is None else np.any(rest, where=keep))


def _created_last(ordered: np.ndarray, read_rows: np.ndarray, created: np.ndarray) -> None:
    """Within each run of equal (key, event time), put the row with the latest created time last
    (in place), where the probe looks; a row without a created time loses."""
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return
    tied = np.zeros(len(ordered), bool)  # every row of a run of two or more
    tied[1:] = same
    tied[:-1] |= same
    where = np.flatnonzero(tied)
    firsts = np.ones(len(where), bool)  # the first row of each run
    firsts[where > 0] = ~same[where[where > 0] - 1]
    starts = np.flatnonzero(firsts)
    rows = read_rows[where]
    made = created[rows]
    latest = np.repeat(np.maximum.reduceat(made, starts), np.diff(np.append(starts, len(where))))
    # the last row of each run holding its latest created time (no sort: one pass per array)
    best = np.maximum.reduceat(np.where(made == latest, np.arange(len(where)), -1), starts)
    last = np.append(starts[1:], len(where)) - 1
    read_rows[where[last]], read_rows[where[best]] = rows[best], rows[last]


def _probe(ordered: np.ndarray, read_rows: np.ndarray, span_bits: int, base: int, step: int,
           entity_codes: np.ndarray, entity_ok: np.ndarray, entity_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last sorted feature row at or below each entity row's (code, time) when its code matches (-1:
    none), and its event time in ns (read back from the packed value: the offset times the step)."""
    ok = entity_ok & (entity_ns >= base)
    top = (1 << span_bits) - 1
    scaled = np.minimum((np.where(ok, entity_ns, base) - base) // step, top)
    probes = np.where(ok, (entity_codes << span_bits) | scaled, -1)
    order = np.argsort(probes)  # sorted probes make searchsorted walk the array once
    at = np.empty(len(probes), np.int64)
    at[order] = np.searchsorted(ordered, probes[order], side="right") - 1
    safe = np.maximum(at, 0)
    found = ordered[safe]
    hit = ok & (at >= 0) & ((found >> span_bits) == entity_codes)
    return np.where(hit, read_rows[safe], -1), base + (found & top) * step
