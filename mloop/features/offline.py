"""Point-in-time-correct training sets with DuckDB ASOF joins.

For each entity row and each feature view: the latest feature row with the same
key whose event time is at or before the row's time (ties on event time broken by
the created timestamp, latest first), kept only when it is within the view's TTL
(``event_time >= row_time - ttl``). Rows with nothing inside the TTL keep nulls;
entity rows keep their order, duplicates included. Sources are scanned by DuckDB,
limited to the time window the entity rows need; nothing is pulled into pandas.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mloop.errors import InvalidInputError
from mloop.features.plan import Request, ViewRequest
from mloop.features.sources import FileSource, _lit, _q, _window, fetch_arrow

__all__ = ["apply_on_demand", "entity_table", "point_in_time_join"]

ROW = "__mloop_row"


def entity_table(con: Any, entities: Any, timestamp: str, timezone: str | None) -> pa.Table:
    """The entity rows as Arrow with aware timestamps: from a DataFrame, Arrow table, Parquet path or SQL."""
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
    if hasattr(table, "read_all"):
        table = table.read_all()
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
        series = table.column(timestamp).to_pandas().dt.tz_localize(timezone).dt.tz_convert("UTC")
        table = table.set_column(table.schema.get_field_index(timestamp), timestamp,
                                 pa.array(series, type=pa.timestamp("us", tz="UTC")))
    return table.append_column(ROW, pa.array(range(table.num_rows), type=pa.int64()))


def _local_parquet(view: Any) -> str | None:
    """The read_parquet pattern of a local Parquet source whose rows can be addressed by file and row number."""
    source = view.source
    if isinstance(source, FileSource) and source.format == "parquet" and "://" not in source.path \
            and not view.timezone:
        return source._pattern()
    return None


def _feature_cte(con: Any, index: int, req: ViewRequest, bounds: tuple[Any, Any]) -> tuple[str, str | None]:
    """(the CTE the ASOF join probes, the CTE holding feature values by row address, or None).

    For local Parquet the ASOF join sorts only (keys, time, file, row number); the feature
    values are fetched afterwards for the matched rows alone, which sorts far less data.
    """
    view = req.view
    start, end = bounds
    start = start - view.ttl if view.ttl is not None and start is not None else None
    pattern = _local_parquet(view)
    window = None if view.timezone else view.timestamp
    ts = _q(view.timestamp)
    if view.timezone:
        ts = f"timezone({_lit(view.timezone)}, {ts})"
    types = {f.name: f.dtype for f in view.schema}
    values = [f"CAST({_q(f)} AS {types[f].duckdb}) AS __f{index}_{j}" for j, f in enumerate(req.features)]
    cols = [f"{_q(k)} AS __k{index}_{j}" for j, k in enumerate(req.keys)]
    cols.append(f"CAST({ts} AS TIMESTAMPTZ) AS __ts{index}")
    payload = None
    if pattern is not None and view.source.columns(con).keys() & {"filename", "file_row_number"}:
        pattern = None  # the source's own columns would clash with DuckDB's virtual ones
    if pattern is not None:
        # one file: the row number is the address; several: with a 64-bit hash of the file name
        # (sorting a number is cheaper than carrying the path)
        fn = "0" if not any(c in pattern for c in "*?[") else "hash(filename)"
        scan = (f"(SELECT * FROM read_parquet({_lit(pattern)}, union_by_name=true, filename=true, "
                f"file_row_number=true){_window(window, start, end)})")
        cols += [f"{fn} AS __fn{index}", f"file_row_number AS __r{index}"]
        payload = (f"p{index} AS (SELECT {fn} AS __pf{index}, file_row_number AS __pr{index}, "
                   f"{', '.join(values)} FROM {scan} AS s)")
    else:
        scan = view.source.scan(con, window, None if view.timezone else start, None if view.timezone else end)
        cols += values
    sql = f"SELECT {', '.join(cols)} FROM {scan} AS s WHERE {_q(view.timestamp)} IS NOT NULL"
    if view.created_timestamp:
        keys = ", ".join(f"__k{index}_{j}" for j in range(len(req.keys)))
        sql += (f" QUALIFY row_number() OVER (PARTITION BY {keys}, __ts{index} "
                f"ORDER BY {_q(view.created_timestamp)} DESC NULLS LAST) = 1")
    return f"f{index} AS ({sql})", payload


def point_in_time_join(con: Any, entities: pa.Table, timestamp: str, request: Request,
                       full_names: bool = False) -> pa.Table:
    """The entity rows with their point-in-time feature values, in input order (see module doc)."""
    missing = [k for k in request.entity_keys if k not in entities.column_names]
    if missing:
        raise InvalidInputError(field="entity_df", value=entities.column_names[:-1],
                                expected=f"the join key columns {request.entity_keys} (missing {missing})")
    con.register("__mloop_entities", entities)
    ts_col = entities.column(timestamp)
    bounds = (pc.min(ts_col).as_py(), pc.max(ts_col).as_py())
    ctes = ["e AS (SELECT * FROM __mloop_entities)"]
    joins, lookups, selects = [], [], []
    for i, req in enumerate(request.views):
        cte, payload = _feature_cte(con, i, req, bounds)
        ctes.append(cte)
        on = " AND ".join(f"e.{_q(k)} = f{i}.__k{i}_{j}" for j, k in enumerate(req.keys))
        joins.append(f"ASOF LEFT JOIN f{i} ON {on} AND e.{_q(timestamp)} >= f{i}.__ts{i}")
        if payload is not None:
            ctes.append(payload)
            lookups.append(f"LEFT JOIN p{i} ON p{i}.__pf{i} = f{i}.__fn{i} AND p{i}.__pr{i} = f{i}.__r{i}")
        ttl = req.view.ttl
        for j, out in enumerate(req.outputs):
            value = f"{'p' if payload is not None else 'f'}{i}.__f{i}_{j}"
            if ttl is not None:
                value = (f"CASE WHEN f{i}.__ts{i} >= e.{_q(timestamp)} - INTERVAL {int(ttl.total_seconds() * 1e6)} "
                         f"MICROSECONDS THEN {value} END")
            selects.append(f"{value} AS {_q(out)}")
    # only the feature values come back from DuckDB, in entity-row order; the entity columns are the
    # caller's own Arrow columns, untouched (nothing but keys, time and row number goes through the joins)
    sql = (f"WITH {', '.join(ctes)} SELECT {', '.join(selects) or 'e.' + ROW} FROM e "
           f"{' '.join(joins + lookups)} ORDER BY e.{ROW}")
    try:
        values = _utc(fetch_arrow(con, sql))
    except Exception as exc:
        import duckdb

        if isinstance(exc, duckdb.Error):
            raise InvalidInputError(f"The training-set query failed: {str(exc).splitlines()[0]}. "
                                    "Check that the entity key columns have the same types as in the sources.",
                                    field="entity_df") from exc
        raise
    finally:
        con.unregister("__mloop_entities")
    result = entities.drop_columns([ROW])
    for name, column in zip(values.column_names, values.columns, strict=True):
        if selects:
            result = result.append_column(name, column)
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

