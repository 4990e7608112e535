"""Where feature rows come from: Parquet or CSV files (a file, a folder or a glob), a SQL query
against DuckDB or PostgreSQL, or an in-memory DataFrame.

Every source becomes a DuckDB relation, so joins and aggregations run in DuckDB
without pulling the source into pandas. A time window, when given, is pushed
down into the scan (and into the PostgreSQL query).

>>> FileSource("data/trips/").spec()["format"]
'parquet'
"""

from __future__ import annotations

import glob as _glob
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError

__all__ = ["DataFrameSource", "FileSource", "Source", "SqlSource", "source_from_spec"]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def epoch_ns(column: str, timezone: str | None = None) -> str:
    """SQL for the nanoseconds since 1970 (UTC) of a timestamp column of any unit (s, ms, us, ns),
    aware or naive; naive values are read in ``timezone`` (UTC when None).

    DuckDB has no ``epoch_us`` for nanosecond time zone-aware timestamps, and comparing a naive
    nanosecond timestamp with an aware one is an error, so every time comparison goes through this
    one integer. Times must lie within 1677-2262, the range of 64-bit nanoseconds.

    >>> epoch_ns("event_timestamp")
    'epoch_ns("event_timestamp")'
    """
    expr = _q(column)
    if timezone:
        expr = f"timezone({_lit(timezone)}, {expr})"
    return f"epoch_ns({expr})"


def _window(ts: str | None, start: datetime | None, end: datetime | None) -> str:
    """A WHERE clause keeping rows with ``start <= ts <= end`` (either bound optional)."""
    if ts is None:
        return ""
    parts = []
    if start is not None:
        parts.append(f"{_q(ts)} >= TIMESTAMPTZ {_lit(start.isoformat())}")
    if end is not None:
        parts.append(f"{_q(ts)} <= TIMESTAMPTZ {_lit(end.isoformat())}")
    return (" WHERE " + " AND ".join(parts)) if parts else ""


class Source:
    """A source of feature rows; subclasses say how DuckDB reads them."""

    kind = "source"

    def spec(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def scan(self, con: Any, ts: str | None = None, start: datetime | None = None,
             end: datetime | None = None) -> str:  # pragma: no cover - abstract
        """A SQL expression usable in FROM, optionally limited to ``start <= ts <= end``."""
        raise NotImplementedError

    def columns(self, con: Any) -> dict[str, str]:
        """Column name -> DuckDB type of the source (no rows are read)."""
        rel = con.sql(f"SELECT * FROM {self.scan(con)} LIMIT 0")
        return {name: str(kind) for name, kind in zip(rel.columns, rel.types, strict=True)}


@dataclass(frozen=True)
class FileSource(Source):
    """Parquet or CSV rows from a file, a folder (every file below it) or a glob, local or ``s3://``."""

    path: str
    format: str = ""

    kind = "file"

    def __post_init__(self) -> None:
        fmt = self.format or ("csv" if str(self.path).lower().endswith((".csv", ".csv.gz")) else "parquet")
        if fmt not in ("parquet", "csv"):
            raise InvalidInputError(field="format", value=self.format, expected="'parquet' or 'csv'")
        object.__setattr__(self, "format", fmt)
        object.__setattr__(self, "path", str(self.path))

    def spec(self) -> dict[str, Any]:
        return {"type": "file", "path": self.path, "format": self.format}

    def _pattern(self) -> str:
        path = self.path
        if "://" not in path and Path(path).is_dir():
            return str(Path(path) / "**" / f"*.{self.format}")
        return path

    def scan(self, con: Any, ts: str | None = None, start: datetime | None = None,
             end: datetime | None = None) -> str:
        pattern = self._pattern()
        if "://" in pattern:
            return self._scan_remote(con, pattern, ts, start, end)
        if not any(c in pattern for c in "*?[") and not Path(pattern).exists():
            raise InvalidInputError(field="source.path", value=self.path, expected="an existing file, folder or glob")
        if any(c in pattern for c in "*?[") and not _glob.glob(pattern, recursive=True):
            raise InvalidInputError(field="source.path", value=self.path, expected="a glob matching at least one file")
        reader = "read_parquet" if self.format == "parquet" else "read_csv_auto"
        extra = ", union_by_name=true" if self.format == "parquet" else ""
        return f"(SELECT * FROM {reader}({_lit(pattern)}{extra}){_window(ts, start, end)})"

    def _scan_remote(self, con: Any, pattern: str, ts: str | None, start: datetime | None,
                     end: datetime | None) -> str:
        # DuckDB's httpfs extension is downloaded at run time; an fsspec-backed Arrow dataset is not.
        import pyarrow.dataset as ds

        from mloop.store.blob.fsspec import FsspecBlobStore

        store = FsspecBlobStore(pattern.split("*")[0].rstrip("/"))
        base = pattern.split("://", 1)[1]
        files = store.fs.glob(base) if any(c in base for c in "*?[") else base
        dataset = ds.dataset(files, filesystem=store.fs, format=self.format)
        name = "src_" + hashlib.sha1(pattern.encode()).hexdigest()[:12]
        con.register(name, dataset)
        return f"(SELECT * FROM {name}{_window(ts, start, end)})"


@dataclass(frozen=True)
class SqlSource(Source):
    """Rows of a SQL query: run by DuckDB (``database`` empty or a ``.duckdb`` file) or by PostgreSQL.

    With PostgreSQL the query runs there, limited to the needed time window, and its
    result is handed to DuckDB as Arrow.
    """

    query: str
    database: str = ""

    kind = "sql"

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidInputError(field="query", value=self.query, expected="a non-empty SQL query")

    def spec(self) -> dict[str, Any]:
        return {"type": "sql", "query": self.query, "database": self.database}

    @property
    def is_postgres(self) -> bool:
        return self.database.startswith("postgresql")

    def scan(self, con: Any, ts: str | None = None, start: datetime | None = None,
             end: datetime | None = None) -> str:
        query = self.query.strip().rstrip(";")
        if self.is_postgres:
            return self._from_postgres(con, query, ts, start, end)
        if self.database:
            alias = "db_" + hashlib.sha1(self.database.encode()).hexdigest()[:10]
            attached = {row[0] for row in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
            if alias not in attached:
                con.execute(f"ATTACH {_lit(self.database)} AS {alias} (READ_ONLY)")
            con.execute(f"USE {alias}")
            try:
                return self._materialized(con, query, ts, start, end)
            finally:
                con.execute("USE memory")
        return f"(SELECT * FROM ({query}) AS q{_window(ts, start, end)})"

    def _materialized(self, con: Any, query: str, ts: str | None, start: datetime | None,
                      end: datetime | None) -> str:
        table = fetch_arrow(con, f"SELECT * FROM ({query}) AS q{_window(ts, start, end)}")
        name = "sql_" + hashlib.sha1((query + str(start) + str(end)).encode()).hexdigest()[:12]
        con.register(name, table)
        return f"(SELECT * FROM {name})"

    def _from_postgres(self, con: Any, query: str, ts: str | None, start: datetime | None,
                       end: datetime | None) -> str:
        import pandas as pd
        import sqlalchemy as sa

        url = self.database
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        where, params = "", {}
        if ts is not None and (start is not None or end is not None):
            parts = []
            if start is not None:
                parts.append(f"{_q(ts)} >= :start")
                params["start"] = start
            if end is not None:
                parts.append(f"{_q(ts)} <= :end")
                params["end"] = end
            where = " WHERE " + " AND ".join(parts)
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                frame = pd.read_sql(sa.text(f"SELECT * FROM ({query}) AS q{where}"), conn, params=params)
        finally:
            engine.dispose()
        name = "pg_" + hashlib.sha1((query + str(start) + str(end)).encode()).hexdigest()[:12]
        con.register(name, frame)
        return f"(SELECT * FROM {name})"


@dataclass(frozen=True, eq=False)
class DataFrameSource(Source):
    """An in-memory pandas DataFrame or Arrow table (lives in this process only; the registry keeps its schema)."""

    data: Any
    name: str = "dataframe"
    kind_: str = field(default="dataframe", repr=False)

    kind = "dataframe"

    def spec(self) -> dict[str, Any]:
        cols = {str(c): str(t) for c, t in getattr(self.data, "dtypes", {}).items()} if hasattr(self.data, "dtypes") \
            else {f.name: str(f.type) for f in self.data.schema}
        return {"type": "dataframe", "name": self.name, "columns": cols}

    def scan(self, con: Any, ts: str | None = None, start: datetime | None = None,
             end: datetime | None = None) -> str:
        name = f"df_{id(self.data):x}"
        data = self.data
        if not hasattr(data, "schema"):
            # pandas goes through Arrow, which keeps nanoseconds: DuckDB's own pandas scan cuts aware
            # nanosecond times to microseconds, and a row 1 ns in the future would then match
            import pyarrow as pa

            data = pa.Table.from_pandas(data, preserve_index=False)
        con.register(name, data)
        return f"(SELECT * FROM {name}{_window(ts, start, end)})"


def source_from_spec(spec: dict[str, Any], local: Source | None = None) -> Source:
    """Rebuild a source from its registry spec; DataFrame sources need the in-process object ``local``."""
    kind = spec.get("type")
    if kind == "file":
        return FileSource(spec["path"], spec.get("format", ""))
    if kind == "sql":
        return SqlSource(spec["query"], spec.get("database", ""))
    if kind == "dataframe":
        if local is None:
            raise InvalidInputError(
                f"The source '{spec.get('name')}' is an in-memory DataFrame that lives only in the process that "
                "defined it; load the feature definitions in this process (FeatureStore(repo=...)) or use a "
                "file or SQL source.", field="source")
        return local
    raise InvalidInputError(field="source.type", value=kind, expected="'file', 'sql' or 'dataframe'")


def fetch_arrow(con: Any, sql: str) -> Any:
    """Run ``sql`` and return a pyarrow Table (DuckDB 1.x and 2.x spell this differently)."""
    result = con.sql(sql)
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        method = getattr(result, name, None)
        if method is not None:
            table = method()
            return table.read_all() if hasattr(table, "read_all") else table
    raise RuntimeError("this DuckDB version cannot return Arrow tables")  # pragma: no cover
