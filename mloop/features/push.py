"""The streaming path: push fresh rows to the online store and append them to the offline source."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInputError
from mloop.features.definitions import FeatureView
from mloop.features.materialize import encode_keys, online_table

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
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)
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
    from mloop.features.sources import _q, fetch_arrow

    order = f"{_q(fv.timestamp)} DESC" + (f", {_q(fv.created_timestamp)} DESC" if fv.created_timestamp else "")
    cols = ", ".join(_q(c) for c in [*keys, *fv.feature_names])
    sql = (f"SELECT {cols}, epoch_us({_q(fv.timestamp)}) AS __ts FROM {relation} QUALIFY row_number() OVER "
           f"(PARTITION BY {', '.join(_q(k) for k in keys)} ORDER BY {order}) = 1")
    return fetch_arrow(con, sql)
