"""What the feature store's client and server exchange: definitions as specs, plans, materialization results,
and training sets as Parquet: the entity rows with the request's options in the file's metadata, the answer with
its lineage.

A definition applied through a server names data the server will read. Paths must lie under the server's
``feature_source_roots``; SQL queries and on-demand functions are code, so the server takes them only from its
own feature repository (``MLOOP_FEATURE_REPO``), never from a request.
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime
from typing import Any

import pyarrow as pa

from mloop.errors import InvalidInputError
from mloop.features.definitions import Definition, FeatureView, definition_from_spec, fingerprint
from mloop.features.materialize import MaterializeResult
from mloop.features.registry import Change, Plan
from mloop.features.sources import FileSource

__all__ = ["PARQUET", "definitions_in", "materialized_in", "materialized_out", "parquet_bytes", "plan_in",
           "plan_out", "read_parquet", "specs_out"]

PARQUET = "application/vnd.apache.parquet"
META_KEY = b"mloop"  # the Parquet metadata entry that carries our JSON


def specs_out(definitions: list[Definition]) -> list[dict[str, Any]]:
    """Definitions as the JSON a server applies; in-memory DataFrame sources cannot travel and are refused.

    >>> from mloop.features import Entity
    >>> specs_out([Entity("zone", join_keys=["zone_id"])])[0]["kind"]
    'entity'
    """
    out = []
    for d in definitions:
        if isinstance(d, FeatureView) and not isinstance(d.source, FileSource) and d.source.kind == "dataframe":
            raise InvalidInputError(field=f"feature view {d.name}.source", value="an in-memory DataFrame",
                                    expected="a FileSource the server can read (MLOOP_TRACKING_URI is set, so "
                                             "definitions are applied on the server)")
        out.append({"kind": d.kind, "spec": d.spec()})
    return out


def definitions_in(items: list[dict[str, Any]], local: dict[tuple[str, str], Definition],
                   roots: tuple[str, ...]) -> list[Definition]:
    """The definitions a request sent, each checked against what the server lets a request define."""
    out = []
    for item in items:
        kind, spec = item["kind"], item["spec"]
        name = spec.get("name") if isinstance(spec, dict) else None
        mine = local.get((kind, name)) if isinstance(name, str) else None
        definition = definition_from_spec(kind, spec, mine)
        if isinstance(definition, FeatureView):
            _check_source(definition, mine, roots)
        out.append(definition)
    return out


def _check_source(view: FeatureView, mine: Definition | None, roots: tuple[str, ...]) -> None:
    source = view.source
    if mine is not None and isinstance(mine, FeatureView) and fingerprint(mine.source.spec()) == fingerprint(
            source.spec()):
        return  # the server's own repository declares this source
    if isinstance(source, FileSource):
        if not _under(source.path, roots):
            raise InvalidInputError(
                field=f"feature view {view.name}.source.path", value=source.path,
                expected=f"an absolute path under the server's feature source roots {list(roots)} (set "
                         "MLOOP_FEATURE_SOURCE_ROOTS where `mloop server` runs)" if roots else
                         "a path under a feature source root; this server has none (set MLOOP_FEATURE_SOURCE_ROOTS "
                         "where `mloop server` runs)")
        return
    raise InvalidInputError(field=f"feature view {view.name}.source", value=source.kind,
                            expected="a file source (SQL sources are code: the server takes them only from its own "
                                     "feature repository, MLOOP_FEATURE_REPO)")


def _under(path: str, roots: tuple[str, ...]) -> bool:
    if "://" in path:
        return any("://" in r and path.startswith(r.rstrip("/") + "/") for r in roots) and ".." not in path
    if not os.path.isabs(path):
        return False  # relative to which folder? the client's is not the server's
    real = os.path.realpath(path)
    return any("://" not in r and os.path.commonpath([real, os.path.realpath(r)]) == os.path.realpath(r)
               for r in roots)


def plan_out(plan: Plan) -> dict[str, Any]:
    return {"changes": [{"kind": c.kind, "name": c.name, "action": c.action, "old_version": c.old_version,
                         "new_version": c.new_version, "changed": list(c.changed)} for c in plan.changes]}


def plan_in(data: dict[str, Any]) -> Plan:
    return Plan([Change(c["kind"], c["name"], c["action"], c["old_version"], c["new_version"], tuple(c["changed"]))
                 for c in data["changes"]])


def materialized_out(results: list[MaterializeResult]) -> list[dict[str, Any]]:
    return [{"view": r.view, "version": r.version, "rows": r.rows, "batches": r.batches,
             "resumed_from": r.resumed_from, "seconds": r.seconds,
             "start": r.start.isoformat() if r.start else None, "end": r.end.isoformat()} for r in results]


def materialized_in(rows: list[dict[str, Any]]) -> list[MaterializeResult]:
    return [MaterializeResult(r["view"], r["version"], _time(r["start"]), _time(r["end"]), r["rows"], r["batches"],
                              r["resumed_from"], r["seconds"]) for r in rows]


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def parquet_bytes(table: pa.Table, meta: dict[str, Any] | None = None) -> bytes:
    """``table`` as Parquet bytes (nanoseconds and zones kept), with ``meta`` as JSON in the file's metadata.

    >>> read_parquet(parquet_bytes(pa.table({"x": [1, None]}), {"lineage": {"name": "t"}}))[1]
    {'lineage': {'name': 't'}}
    """
    import pyarrow.parquet as pq

    if meta is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink, version="2.6")
    return sink.getvalue()


def read_parquet(data: bytes, field: str = "body") -> tuple[pa.Table, dict[str, Any]]:
    """A Parquet payload as Arrow, and the JSON it carries in its metadata (empty when none)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
        schema_meta = dict(table.schema.metadata or {})
        raw = schema_meta.pop(META_KEY, None)
        meta = json.loads(raw) if raw else {}
    except (pa.ArrowInvalid, OSError, ValueError) as exc:
        raise InvalidInputError(field=field, value=f"{len(data)} bytes ({str(exc)[:80]})",
                                expected="a Parquet file (with JSON in its 'mloop' metadata)") from None
    if not isinstance(meta, dict):
        raise InvalidInputError(field=f"{field}.metadata.mloop", value=str(meta)[:80], expected="a JSON object")
    return table.replace_schema_metadata(schema_meta or None), meta
