"""The streaming path: push fresh rows to the online store and append them to the offline source."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInputError
from mloop.features.definitions import FeatureView
from mloop.features.lookup import KeyTypes, entity_key_types
from mloop.features.materialize import encode_keys, online_table
from mloop.features.types import INT_RANGES, DType, String, key_expected, key_fits

if TYPE_CHECKING:
    from mloop.features.store import FeatureStore

__all__ = ["push_rows"]


def push_rows(store: FeatureStore, view: str, rows: Any, to: str) -> int:
    """Write fresh rows online (latest per entity, monotonic), offline (a new Parquet file), or both."""
    import pandas as pd
    import pyarrow as pa

    if to not in ("online", "offline", "both"):
        raise InvalidInputError(field="to", value=to, expected="'online', 'offline' or 'both'")
    fv, version = store.feature_view(view)
    key_types = entity_key_types(store, [fv])
    table = rows if isinstance(rows, pa.Table) else _to_arrow(pd.DataFrame(rows), key_types)
    keys = store.keys_of(fv)
    needed = [*keys, fv.timestamp, *([fv.created_timestamp] if fv.created_timestamp else []), *fv.feature_names]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise InvalidInputError(field="rows", value=table.column_names, expected=f"the columns {needed} "
                                f"(missing {missing})")
    kind = table.schema.field(fv.timestamp).type
    if not pa.types.is_timestamp(kind) or kind.tz is None:
        raise InvalidInputError(field=f"rows.{fv.timestamp}", value=str(kind),
                                expected="timezone-aware timestamps (e.g. pd.to_datetime(col, utc=True))")
    _check_keys(table, key_types)
    _check_not_future(table, fv.timestamp, store.settings.max_future_skew_seconds)
    con = store._duckdb()
    try:
        con.register("__push", table)
        _check_types(con, "__push", fv)  # before anything is written, offline or online
        if to in ("offline", "both"):
            _append_offline(fv, table)
        latest = _latest_rows(con, "__push", keys, fv) if to in ("online", "both") else None
    finally:
        con.close()
    if latest is not None:
        store.online_store.write(online_table(store.project, fv.name, version), len(fv.feature_names),
                                encode_keys(latest, keys), latest.column("__ts").to_pylist(),
                                [latest.column(f).to_pylist() for f in fv.feature_names])
    return table.num_rows


def _to_arrow(frame: Any, key_types: KeyTypes) -> Any:
    """An Arrow table of ``frame``; a column Arrow cannot type (a 30-digit integer, mixed types) is named."""
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        for name in frame.columns:
            try:
                pa.array(frame[name], from_pandas=True)
            except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
                raise _column_error(frame[name], key_types.get(name), exc) from None
        raise


def _column_error(column: Any, key: tuple[str, DType] | None, exc: Exception) -> InvalidInputError:
    """The error for a column Arrow refused: for an entity key, its first value of the wrong type."""
    if key is None:
        return InvalidInputError(field=f"rows.{column.name}", value=str(column.head(3).tolist())[:80],
                                 expected=f"values of one type that fit a column ({exc})")
    entity, kind = key
    wrong = next((v for v in column if not key_fits(kind, v)), None)
    return InvalidInputError(field=f"rows.{column.name}", value=wrong, expected=key_expected(kind, entity))


def _check_keys(table: Any, types: KeyTypes) -> None:
    """Every entity key column holds values of its entity's declared type, none missing (vectorized)."""
    for key, (entity, kind) in types.items():
        bad, value = _key_problem(table.column(key), kind)
        if bad:
            raise InvalidInputError(field=f"rows.{key}", value="a missing key" if value is None else value,
                                    expected=key_expected(kind, entity))


def _key_problem(column: Any, kind: DType) -> tuple[bool, Any]:
    """(True, an offending value) when ``column`` does not hold keys of type ``kind``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count:
        return True, None
    if kind.name in INT_RANGES:
        if not pa.types.is_integer(column.type):
            return True, column[0].as_py()
        low, high = INT_RANGES[kind.name]
        bounds = pc.min_max(column).as_py()
        outside = [v for v in (bounds["min"], bounds["max"]) if v is not None and not low <= v <= high]
        return bool(outside), outside[0] if outside else None
    if kind is String and not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return True, column[0].as_py()
    return False, None


def _check_not_future(table: Any, column: str, skew_seconds: float) -> None:
    """Event times at most ``skew_seconds`` past now: online values are newest-wins, so one far-future
    row would hide every later push of its entity."""
    import pyarrow as pa
    import pyarrow.compute as pc

    times = table.column(column)
    if times.null_count == len(times):
        return
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[times.type.unit]
    latest = pc.max(times.cast(pa.int64())).as_py()
    limit = datetime.now(UTC).timestamp() + skew_seconds
    if latest / per_second > limit:
        try:
            shown = datetime.fromtimestamp(latest // per_second, UTC).isoformat()
        except (OverflowError, ValueError, OSError):
            shown = f"{latest} {times.type.unit} after 1970"
        raise InvalidInputError(
            f"rows.{column}: got an event time of {shown}, expected at most {skew_seconds:g} seconds past now "
            f"({datetime.fromtimestamp(limit, UTC).isoformat()}); set MLOOP_MAX_FUTURE_SKEW_SECONDS to allow more.",
            field=f"rows.{column}", value=shown,
            expected=f"event times at most {skew_seconds:g} seconds past now")


def _append_offline(fv: FeatureView, table: Any) -> None:
    import uuid

    import pyarrow.parquet as pq

    from mloop.features.sources import FileSource

    src = fv.source
    folder = Path(src.path) if isinstance(src, FileSource) and src.format == "parquet" else None
    if folder is None or not folder.is_dir():
        raise InvalidInputError(f"Feature view '{fv.name}' reads {src.spec()}; pushing offline needs a folder "
                                "Parquet source (FileSource('path/to/folder/')). Push with to='online'.",
                                field="to")
    name = f"push-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(table, folder / name)


def _check_types(con: Any, relation: str, fv: FeatureView) -> None:
    """Reject feature columns whose type the view does not accept (all-null columns pass)."""
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {relation}").fetchall()}
    for f in fv.schema:
        kind = types[f.name]
        if kind.strip('"').upper() != "NULL" and not f.dtype.accepts(kind):
            raise InvalidInputError(field=f"rows.{f.name}", value=kind,
                                    expected=f"values of type {f.dtype.name} (the feature view '{fv.name}' "
                                             f"declares it so)")


def _latest_rows(con: Any, relation: str, keys: list[str], fv: FeatureView) -> Any:
    from mloop.features.sources import _q, epoch_ns, fetch_arrow

    # integer nanoseconds: DuckDB has no epoch_us for nanosecond aware timestamps (pandas' default)
    ts = epoch_ns(fv.timestamp)
    order = f"{ts} DESC" + (f", {epoch_ns(fv.created_timestamp)} DESC NULLS LAST" if fv.created_timestamp else "")
    cols = ", ".join(_q(c) for c in [*keys, *fv.feature_names])
    sql = (f"SELECT {cols}, {ts} // 1000 AS __ts FROM {relation} QUALIFY row_number() OVER "
           f"(PARTITION BY {', '.join(_q(k) for k in keys)} ORDER BY {order}) = 1")
    return fetch_arrow(con, sql)
