"""The data-side triggers: new rows in Parquet files or a database table (past a watermark), a materialized
feature view, and drift of a data file measured directly against the champion's training profile.

A table is named, never written into SQL: the name must be an identifier (``trips`` or ``schema.trips``) and
SQLAlchemy quotes it in ``SELECT count(*)``.

>>> check_table_name("sales.trips", "r.trigger.table")
'sales.trips'
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from mloop.automation.triggers import Candidate
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError

__all__ = ["check_db_url", "check_table_name", "count_rows", "count_table", "data_drift", "materialized",
           "new_data"]

MAX_PARQUET_FILES = 10_000
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?")
_MEASURED: dict[str, float] = {}  # drift already computed in this process, by event key: a tick reads a file once
_MAX_MEASURED = 4096


def check_table_name(name: Any, where: str) -> str:
    """``name`` when it is a table identifier (``table`` or ``schema.table``), else a clear error."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise InvalidInputError(field=where, value=name, expected="a table name: letters, digits and '_', not "
                                "starting with a digit, optionally schema.table (at most 63 characters each)")
    return name


def check_db_url(url: Any, where: str) -> str:
    """``url`` when SQLAlchemy can parse it as a database URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, TypeError, ValueError):
        raise InvalidInputError(field=where, value="<hidden>" if isinstance(url, str) else url,
                                expected="a database URL such as postgresql+psycopg://host/db or sqlite:///file.db")\
            from None
    return str(url)


def _parquet_files(path: str, trigger: str) -> list[Path]:
    root = Path(path)
    files = [root] if root.is_file() else sorted(root.rglob("*.parquet")) if root.is_dir() else []
    if not files:
        raise NotFoundError(f"{trigger} trigger: no Parquet file at {path!r}.", field="trigger.path")
    if len(files) > MAX_PARQUET_FILES:
        raise InvalidInputError(field="trigger.path", value=path, expected=f"at most {MAX_PARQUET_FILES} files")
    return files


def count_rows(path: str) -> int:
    """Rows in a Parquet file, or in every Parquet file under a folder (read from the footers only)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in _parquet_files(path, "new_data"))


def count_table(db_url: str, table: str) -> int:
    """``SELECT count(*)`` of ``table`` (already checked as an identifier) in the database at ``db_url``."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    schema, _, name = table.rpartition(".")
    engine = sa.create_engine(db_url, poolclass=NullPool)  # a user's database: no pool kept between ticks
    try:
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(sa.table(name, schema=schema or None))
            return int(conn.execute(query).scalar_one())
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise NotFoundError(f"new_data trigger: cannot count the rows of table {table!r}: {reason}",
                            field="trigger.table") from None
    finally:
        engine.dispose()


def new_data(rule: Any, trig: dict[str, Any], last: dict[str, Any], settings: Settings) -> list[Candidate]:
    """Rows of a path or table past the last event's watermark (``min_rows`` at least), or a materialization."""
    if "feature_view" in trig:
        return materialized(rule, trig["feature_view"], trig.get("project", "default"), last, settings)
    if "table" in trig:
        rows, source = count_table(trig["db_url"], trig["table"]), {"data.table": trig["table"]}
    else:
        rows, source = count_rows(trig["path"]), {"data.path": trig["path"]}
    watermark = int(last.get("data.rows", 0))
    if rows - watermark < int(trig.get("min_rows", 1)):
        return []
    # keyed by the watermark it grew past: two observers that saw different counts still write one event
    return [Candidate(f"new_data:{rule.name}:{watermark}",
                      {"data.rows": rows, "data.new_rows": rows - watermark, **source})]


def materialized(rule: Any, view: str, project: str, last: dict[str, Any], settings: Settings) -> list[Candidate]:
    """The newest ``features.materialized`` event of ``project``'s ``view`` after the last one this rule saw
    (several between two ticks make one retraining, not several); another project's view of that name is not
    this rule's."""
    from sqlalchemy import select

    from mloop.events._tables import events
    from mloop.store.sql import open_database

    query = (select(events.c.id, events.c.payload).where(events.c.name == "features.materialized",
                                                         events.c.id > int(last.get("features.outbox_id", 0)))
             .order_by(events.c.id.desc()).limit(1000))
    with open_database(settings.db_url).read() as conn:
        for row in conn.execute(query):
            payload = json.loads(row.payload)
            if payload.get("view") == view and payload.get("project") == project:
                return [Candidate(f"new_data:{rule.name}:view:{row.id}",
                                  {"features.view": view, "features.project": project,
                                   "features.rows": payload.get("rows"), "features.outbox_id": row.id})]
    return []


def data_stamp(path: str) -> str:
    """What says a data file (or folder) changed, without reading it: each Parquet file's path, size and
    modification time, hashed."""
    digest = hashlib.sha256()
    for file in _parquet_files(path, "drift"):
        stat = file.stat()
        digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def data_drift(rule: Any, trig: dict[str, Any], settings: Settings) -> list[Candidate]:
    """Drift of the Parquet data at ``data`` against the training profile attached to the alias's version
    (mloop.validation.drift), once per file state and version; with ``share``, only when at least that share
    of columns drifted."""
    from mloop.registry import registry_for

    registry = registry_for(settings)
    version = registry.get_alias(rule.model, trig.get("alias", "champion"))
    stamp = data_stamp(trig["data"])
    key = f"drift:{rule.name}:data:{stamp}:{version.version}"
    if key not in _MEASURED:
        if len(_MEASURED) >= _MAX_MEASURED:
            _MEASURED.clear()
        _MEASURED[key] = _drift_share(rule.model, version.version, trig["data"], registry)
    share = _MEASURED[key]
    if share < float(trig.get("share", 0.0)):
        return []
    return [Candidate(key, {"drift.share": share, "data.path": trig["data"], "data.stamp": stamp,
                            "version": version.version})]


def _drift_share(model: str, version: int, path: str, registry: Any) -> float:
    import pandas as pd

    from mloop.validation import drift, model_profile

    reference = model_profile(model, version, registry)
    # every column read: one the profile has and the file lacks is drift()'s clear error, not pyarrow's
    return float(drift(reference, pd.read_parquet(path)).drift_share)
