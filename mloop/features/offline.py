"""Point-in-time-correct training sets, computed by DuckDB over the sources.

For each entity row and each feature view: the latest feature row with the same
key whose event time is at or before the row's time (ties on event time broken by
the created timestamp, latest first; a row without one loses), kept only when it is
within the view's TTL (``event_time >= row_time - ttl``). Rows with nothing inside the
TTL keep nulls; entity rows keep their order, duplicates included. Sources are scanned
by DuckDB, limited to the time window the entity rows need; nothing is pulled into pandas.

Every time is compared as integer nanoseconds since 1970 (any unit, any zone), so the
answer is exact to the nanosecond. Three plans, picked per view:

- *NumPy* (``mloop.features.asof``), tried first for a view with one join key read from one local
  Parquet file: one sort of packed 64-bit integers and a ``searchsorted``; it declines what it
  cannot answer exactly as the DuckDB plans below do, and they run instead.

- *TTL buckets* (a view with a TTL that is short against the entity rows' time span):
  each entity row is hash-joined to the feature rows of its key in its own and the
  previous TTL-wide time bucket, and the latest by (event time, created time) is kept.
  No sort of the feature rows at all; used when the estimated number of candidate
  pairs stays below the number of feature rows.
- *ASOF join* otherwise: one sort, with the created time folded into the sort key
  (event time in the high 64 bits of a 128-bit integer, created time in the low ones),
  so ties need no de-duplication pass.

Each view is one query that answers only the matched entity rows: their row number and
either the feature values or, for local Parquet, the matched row's number in its file.
NumPy puts them in entity-row order; with one file, Arrow then reads the value columns
(only the row groups holding a match) and takes the rows by number (``_payload``), which
saves DuckDB a scan of every value and a join on the row address.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop.errors import InvalidInputError
from mloop.features._payload import has_columns, only_file, positions, take_rows
from mloop.features.asof import asof_rows, times_ns
from mloop.features.plan import Request, ViewRequest
from mloop.features.sources import DataFrameSource, FileSource, _lit, _q, _window, epoch_ns, fetch_arrow

__all__ = ["apply_on_demand", "entity_arrow", "entity_table", "point_in_time_join"]

ROW = "__mloop_row"
_NO_CREATED = -(2 ** 63)  # a feature row without a created time loses every tie
_LOW64 = 2 ** 64
# declared types whose values Arrow reads from Parquet exactly as DuckDB would return them
_SAME_IN_ARROW = {"DOUBLE": pa.float64(), "FLOAT": pa.float32(), "BIGINT": pa.int64(), "INTEGER": pa.int32(),
                  "BOOLEAN": pa.bool_()}


def entity_table(con: Any, entities: Any, timestamp: str, timezone: str | None, ambiguous: str = "raise",
                 nonexistent: str = "raise") -> pa.Table:
    """The entity rows as Arrow with aware timestamps: from a DataFrame, Arrow table, Parquet path or SQL.

    Naive timestamps are read as wall-clock times in ``timezone``; ``ambiguous`` and ``nonexistent``
    say what to do with local times that a daylight-saving change repeats or skips
    (see ``mloop.features.localtime``).
    """
    table = entity_arrow(con, entities)
    if timestamp not in table.column_names:
        raise InvalidInputError(field="entity_df", value=table.column_names,
                                expected=f"a timestamp column '{timestamp}' (or pass timestamp_column=...)")
    kind = table.schema.field(timestamp).type
    if not pa.types.is_timestamp(kind):
        raise InvalidInputError(field=f"entity_df.{timestamp}", value=str(kind),
                                expected="timestamps (timezone-aware, e.g. pd.to_datetime(col, utc=True))")
    if kind.tz is None:
        if not timezone:
            raise InvalidInputError(
                f"The entity timestamps in '{timestamp}' have no time zone, so their instant is ambiguous. "
                f"Make them aware (df['{timestamp}'] = df['{timestamp}'].dt.tz_localize('UTC')) or pass "
                "timezone='UTC' (the zone they are in) to training_set.", field=f"entity_df.{timestamp}")
        from mloop.features.localtime import localize

        series = localize(table.column(timestamp).to_pandas(), timezone, f"entity_df.{timestamp}", ambiguous,
                          nonexistent)
        table = table.set_column(table.schema.get_field_index(timestamp), timestamp,
                                 pa.array(series, type=pa.timestamp(kind.unit, tz="UTC")))
    return table.append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))  # not range(): 20 ms per 100k


def entity_arrow(con: Any, entities: Any) -> pa.Table:
    """The entity rows as an Arrow table, as given: a DataFrame, Arrow table, Parquet path or SQL query (run by
    DuckDB on ``con``, in the caller's process, so a client reads its own files before it sends the rows on).

    >>> import duckdb
    >>> entity_arrow(duckdb.connect(), "SELECT 1 AS zone_id").column_names
    ['zone_id']
    """
    import pandas as pd

    if isinstance(entities, pa.Table):
        table = entities
    elif isinstance(entities, pd.DataFrame):
        table = pa.Table.from_pandas(entities, preserve_index=False)
    elif isinstance(entities, str) and entities.lstrip().lower().startswith(("select", "with", "from")):
        table = fetch_arrow(con, entities)
    elif isinstance(entities, str) or hasattr(entities, "__fspath__"):
        from pathlib import Path

        path = Path(entities)
        if not path.exists():
            raise InvalidInputError(field="entity_df", value=str(entities),
                                    expected="a DataFrame, an existing Parquet file/folder, or a SQL query")
        pattern = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
        table = fetch_arrow(con, f"SELECT * FROM read_parquet({_lit(pattern)})")
    else:
        raise InvalidInputError(field="entity_df", value=type(entities).__name__,
                                expected="a pandas DataFrame, an Arrow table, a Parquet path or a SQL query")
    return table.read_all() if hasattr(table, "read_all") else table


def _local_parquet(view: Any) -> str | None:
    """The read_parquet pattern of a local Parquet source whose rows can be addressed by file and row number."""
    source = view.source
    if isinstance(source, FileSource) and source.format == "parquet" and "://" not in source.path:
        return source._pattern()
    return None


class _Window:
    """The entity rows' time range in nanoseconds, and what the plan choice needs to know about them."""

    def __init__(self, entities: pa.Table, timestamp: str) -> None:
        read = times_ns(entities.column(timestamp))
        if read is None:
            raise InvalidInputError(field=f"entity_df.{timestamp}", value="a time outside 1677-2262",
                                    expected="times within 1677-2262 (64-bit nanoseconds)")
        self.times_ns, self.has_time = read
        valid = self.times_ns[self.has_time]
        self.first_ns = int(valid.min()) if len(valid) else None
        self.last_ns = int(valid.max()) if len(valid) else None
        self.rows = entities.num_rows
        self._entities = entities
        self._squares: dict[tuple[str, ...], int] = {}

    def bounds(self, ttl: timedelta | None) -> tuple[datetime | None, datetime | None]:
        """The source rows to scan, as a window pushed into the scan (widened to whole microseconds)."""
        if self.first_ns is None:
            return None, None
        first = self.first_ns - (_ttl_ns(ttl) if ttl is not None else 0)
        start = _from_ns(first // 1000 * 1000) if ttl is not None else None
        return start, _from_ns(-(-self.last_ns // 1000) * 1000)

    def key_column(self, key: str) -> pa.ChunkedArray:
        """The entity rows' values of join key ``key``."""
        return self._entities.column(key)

    def key_squares(self, keys: tuple[str, ...]) -> int:
        """The sum over keys of (entity rows with that key) squared: how much the rows pile up on few keys."""
        if keys not in self._squares:
            counts = self._entities.group_by(list(keys)).aggregate([([], "count_all")]).column("count_all")
            self._squares[keys] = int(pc.sum(pc.multiply(counts.cast(pa.int64()), counts.cast(pa.int64()))).as_py()
                                      or 0)
        return self._squares[keys]


def _ttl_ns(ttl: timedelta) -> int:
    return (ttl.days * 86_400 + ttl.seconds) * 1_000_000_000 + ttl.microseconds * 1_000


def _from_ns(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def _source_rows(con: Any, view: Any) -> int | None:
    """The number of rows in the source when it is known without reading them (Parquet footers, in memory)."""
    pattern = _local_parquet(view)
    if pattern is not None:
        return int(con.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({_lit(pattern)})").fetchall()[0][0]
                   or 0)
    if isinstance(view.source, DataFrameSource):
        return len(view.source.data)
    return None


def _use_buckets(con: Any, req: ViewRequest, window: _Window) -> bool:
    """Whether the TTL-bucket plan beats the ASOF join: the candidate (entity row, feature row) pairs it
    would weigh, estimated assuming feature rows spread over keys like the entity rows do and evenly in
    time, stay below the number of feature rows (which the ASOF join has to sort)."""
    ttl = req.view.ttl
    if ttl is None or window.first_ns is None or not window.rows:
        return False
    feature_rows = _source_rows(con, req.view)
    if not feature_rows:
        return False
    span = window.last_ns - window.first_ns + _ttl_ns(ttl)
    share = min(1.0, 2 * _ttl_ns(ttl) / span)  # the two buckets each entity row looks at
    pairs = feature_rows / window.rows * share * window.key_squares(req.keys)
    return pairs <= feature_rows


def _try_numpy(req: ViewRequest) -> bool:
    """Whether to try the NumPy plan (``mloop.features.asof``) first: one join key, times not read in a zone.
    It still declines what it cannot answer exactly, and DuckDB's plans run instead."""
    return len(req.keys) == 1 and not req.view.timezone


def _payload_mode(con: Any, req: ViewRequest) -> tuple[str, str | None]:
    """How a view's values reach the result: ("file", path) taken by row number from its one local
    Parquet file, ("address", pattern) joined by (file, row) for several files, or ("values", None)
    carried through the join."""
    pattern = _local_parquet(req.view)
    if pattern is None or req.view.source.columns(con).keys() & {"filename", "file_row_number"}:
        return "values", None  # the source's own columns would clash with DuckDB's virtual ones
    path = only_file(con, pattern)
    if path is not None and has_columns(path, req.features):
        return "file", path
    return "address", pattern


def _feature_cte(con: Any, index: int, req: ViewRequest, window: _Window, mode: str,
                 pattern: str | None) -> list[str]:
    """The CTEs that read view ``index``'s rows (``mode`` and ``pattern`` from ``_payload_mode``).

    ``f{i}`` holds the keys ``__k{i}_{j}``, the event time ``__ts{i}`` (nanoseconds), the order of rows
    ``__o{i}`` (the event time, or with a created time both in one 128-bit integer: event time high,
    created time low), and either the feature values ``__f{i}_{j}`` or the row's address (``__r{i}``,
    with several files also ``__fn{i}``, a 64-bit hash of the file name: sorting a number is cheaper
    than carrying the path): the joins then move only (keys, times, address), and the values of the
    matched rows alone are fetched afterwards, by Arrow from the one file or from ``p{i}``.
    """
    view = req.view
    start, end = window.bounds(view.ttl)
    ts = epoch_ns(view.timestamp, view.timezone)
    types = {f.name: f.dtype for f in view.schema}
    values = [f"CAST({_q(f)} AS {types[f].duckdb}) AS __f{index}_{j}" for j, f in enumerate(req.features)]
    cols = [f"{_q(k)} AS __k{index}_{j}" for j, k in enumerate(req.keys)]
    cols.append(f"{ts} AS __ts{index}")
    if view.created_timestamp:
        created = f"coalesce({epoch_ns(view.created_timestamp, view.timezone)}, {_NO_CREATED})"
        cols.append(f"CAST({ts} AS HUGEINT) * {_LOW64} + ({created} + {2 ** 63}) AS __o{index}")
    else:
        cols.append(f"{ts} AS __o{index}")
    window_col = None if view.timezone else view.timestamp
    ctes = []
    if mode == "values":
        scan = view.source.scan(con, window_col, *((start, end) if window_col else (None, None)))
        cols += values
    else:
        several = ", union_by_name=true, filename=true" if mode == "address" else ""
        files = f"read_parquet({_lit(pattern or '')}{several}, file_row_number=true)"
        scan = f"(SELECT * FROM {files}{_window(window_col, start, end)})"
        cols.append(f"file_row_number AS __r{index}")
        if mode == "address":
            cols.append(f"hash(filename) AS __fn{index}")
            # every row of the files, unfiltered: the join on the address does the picking
            ctes.append(f"p{index} AS (SELECT hash(filename) AS __pf{index}, file_row_number AS __pr{index}, "
                        f"{', '.join(values)} FROM {files} AS s)")
    where = [f"{ts} IS NOT NULL", f"{ts} <= {window.last_ns}" if window.last_ns is not None else "FALSE"]
    if view.ttl is not None and window.first_ns is not None:
        where.append(f"{ts} >= {window.first_ns - _ttl_ns(view.ttl)}")
    ctes.insert(0, f"f{index} AS (SELECT {', '.join(cols)} FROM {scan} AS s WHERE {' AND '.join(where)})")
    return ctes


def _match_asof(index: int, req: ViewRequest, carried: list[str]) -> tuple[list[str], str]:
    """(the CTE, its name) for the ASOF plan, on the row order ``__o{i}``: the matched entity rows only."""
    i = index
    on = " AND ".join(f"e.{_q(k)} = f{i}.__k{i}_{j}" for j, k in enumerate(req.keys))
    # with created times, the entity side is its time with the largest created time, so every
    # feature row at that instant qualifies and the latest created one wins
    probe = f"CAST(e.__t AS HUGEINT) * {_LOW64} + {_LOW64 - 1}" if req.view.created_timestamp else "e.__t"
    ttl = f" WHERE f{i}.__ts{i} >= e.__t - {_ttl_ns(req.view.ttl)}" if req.view.ttl is not None else ""
    picked = ", ".join(f"f{i}.{c} AS {c}" for c in carried)
    return [f"m{i} AS (SELECT e.{ROW} AS __row{i}, {picked} FROM e ASOF JOIN f{i} ON {on} "
            f"AND {probe} >= f{i}.__o{i}{ttl})"], f"m{i}"


def _match_buckets(index: int, req: ViewRequest, carried: list[str]) -> tuple[list[str], str]:
    """(the CTE, its name) for the TTL-bucket plan: the latest feature row per entity row by hash joins."""
    i, width = index, _ttl_ns(req.view.ttl)  # type: ignore[arg-type]
    keys = ", ".join(_q(k) for k in req.keys)
    on = " AND ".join(f"b.{_q(k)} = f{i}.__k{i}_{j}" for j, k in enumerate(req.keys))
    if carried == [f"__r{i}"]:  # one file: the row number alone (a plain arg_max is the cheapest)
        latest = f"arg_max(f{i}.__r{i}, f{i}.__o{i}) AS __r{i}"
    else:  # one struct, so that every column comes from the same row (and a null value is kept)
        packed = ", ".join(f"{c} := f{i}.{c}" for c in carried)
        latest = f"unnest(arg_max(struct_pack({packed}), f{i}.__o{i}))"
    cte = (f"m{i} AS (SELECT b.{ROW} AS __row{i}, {latest} "
           f"FROM (SELECT {ROW}, {keys}, __t, __t // {width} - o.o AS __b FROM e, (VALUES (0), (1)) AS o(o) "
           f"WHERE __t IS NOT NULL) AS b JOIN f{i} ON {on} AND b.__b = f{i}.__ts{i} // {width} "
           f"WHERE f{i}.__ts{i} <= b.__t AND f{i}.__ts{i} >= b.__t - {width} GROUP BY b.{ROW})")
    return [cte], f"m{i}"


def _view_values(con: Any, index: int, req: ViewRequest, window: _Window, head: str) -> pa.Table:
    """View ``index``'s output columns, one row per entity row in input order (nulls where nothing matched).

    DuckDB answers only the matched entity rows (``__row{i}`` and the values or their row number);
    NumPy puts them in place, and Arrow takes the values by position.
    """
    i, count = index, window.rows
    mode, pattern = _payload_mode(con, req)
    if mode == "file" and _try_numpy(req):
        picked = asof_rows(pattern or "", req.keys[0], req.view.timestamp, req.view.created_timestamp,
                           _ttl_ns(req.view.ttl) if req.view.ttl is not None else None,
                           window.key_column(req.keys[0]), window.times_ns, window.has_time)
        if picked is not None:
            return _cast_values(con, i, req, take_rows(pattern or "", req.features, picked))
    ctes = [head, *_feature_cte(con, i, req, window, mode, pattern)]
    carried = {"file": [f"__r{i}"], "address": [f"__fn{i}", f"__r{i}"]}.get(mode) or \
        [f"__f{i}_{j}" for j in range(len(req.features))]
    extra, matched = (_match_buckets if _use_buckets(con, req, window) else _match_asof)(i, req, carried)
    ctes += extra
    if mode == "address":
        names = ", ".join(f"p{i}.__f{i}_{j}" for j in range(len(req.features)))
        select = (f"SELECT {matched}.__row{i}, {names} FROM {matched} JOIN p{i} "
                  f"ON p{i}.__pf{i} = {matched}.__fn{i} AND p{i}.__pr{i} = {matched}.__r{i}")
    else:
        select = f"SELECT * FROM {matched}"
    found = fetch_arrow(con, f"WITH {', '.join(ctes)} {select}")
    rows = found.column(0).to_numpy()
    if mode == "file":
        picked = positions(rows, found.column(1).to_numpy(), count)
        return _cast_values(con, i, req, take_rows(pattern or "", req.features, picked))
    place = positions(rows, np.arange(len(rows), dtype=np.int64), count)
    values = found.drop_columns([found.column_names[0]]).take(pa.array(place, mask=place < 0))
    return values.rename_columns(list(req.outputs))


def _cast_values(con: Any, index: int, req: ViewRequest, raw: pa.Table) -> pa.Table:
    """The values read by Arrow, cast by DuckDB to the view's declared types (as every other plan does),
    unless Arrow already holds each in the type DuckDB would answer with."""
    types = {f.name: f.dtype for f in req.view.schema}
    if all(_SAME_IN_ARROW.get(types[f].duckdb) == raw.schema.field(c).type
           for c, f in zip(raw.column_names, req.features, strict=True)):
        return raw.rename_columns(list(req.outputs))
    name = f"__mloop_values{index}"
    con.register(name, raw)
    try:
        casts = ", ".join(f"CAST({_q(c)} AS {types[f].duckdb}) AS {_q(out)}"
                          for c, f, out in zip(raw.column_names, req.features, req.outputs, strict=True))
        return fetch_arrow(con, f"SELECT {casts} FROM {name}")
    finally:
        con.unregister(name)


def point_in_time_join(con: Any, entities: pa.Table, timestamp: str, request: Request,
                       full_names: bool = False) -> pa.Table:
    """The entity rows with their point-in-time feature values, in input order (see module doc)."""
    missing = [k for k in request.entity_keys if k not in entities.column_names]
    if missing:
        raise InvalidInputError(field="entity_df", value=entities.column_names[:-1],
                                expected=f"the join key columns {request.entity_keys} (missing {missing})")
    con.register("__mloop_entities", entities)
    window = _Window(entities, timestamp)
    # only the keys, the time (as nanoseconds) and the row number go through the joins; the entity
    # columns of the result are the caller's own Arrow columns, untouched
    columns = ", ".join([*(_q(k) for k in request.entity_keys), f"epoch_ns({_q(timestamp)}) AS __t", ROW])
    head = f"e AS (SELECT {columns} FROM __mloop_entities)"
    result = entities.drop_columns([ROW])
    try:
        for i, req in enumerate(request.views):
            if req.features:
                values = _utc(_view_values(con, i, req, window, head))
                for name, column in zip(values.column_names, values.columns, strict=True):
                    result = result.append_column(name, column)
    except Exception as exc:
        import duckdb

        if isinstance(exc, duckdb.Error):
            raise InvalidInputError(f"The training-set query failed: {str(exc).splitlines()[0]}. "
                                    "Check that the entity key columns have the same types as in the sources, "
                                    "and that times lie within 1677-2262.", field="entity_df") from exc
        raise
    finally:
        con.unregister("__mloop_entities")
    return result


def _utc(table: pa.Table) -> pa.Table:
    """Aware timestamp columns labelled plain "UTC" (DuckDB says "Etc/UTC")."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.tz and f.type.tz != "UTC":
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp(f.type.unit, "UTC")))
    return table


def apply_on_demand(frame: Any, request: Request) -> Any:
    """Run the request's on-demand views on a joined training frame (same functions as online)."""
    missing = [c for c in request.request_columns if c not in frame.columns]
    if missing:
        raise InvalidInputError(field="entity_df", value=list(frame.columns),
                                expected=f"the request columns {missing} used by on-demand views")
    for od in request.on_demand:
        inputs = frame[list(od.input_columns.values())].copy()
        inputs.columns = list(od.input_columns)
        for f in od.view.request:
            inputs[f.name] = frame[f.name].to_numpy()
        out = od.view.transform(inputs.reset_index(drop=True))
        for f, o in zip(od.features, od.outputs, strict=True):
            frame[o] = out[f].to_numpy()
    hidden = [o for v in request.views for f, o in zip(v.features, v.outputs, strict=True) if f in v.hidden]
    return frame.drop(columns=hidden)

