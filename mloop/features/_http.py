"""The feature store through ``mloop server``: what ``FeatureStore(...)`` is when ``MLOOP_TRACKING_URI`` is set.

The registry, the offline sources, point-in-time joins, materialization and the online store all stay on the
server; this client sends definitions as specs, entity rows as Parquet and push rows as JSON, and needs no
database, object-store or online-store credentials (only the token, ``MLOOP_TOKEN`` or ``mloop login``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.features import _wire
from mloop.features._defs import DefinitionSet
from mloop.features.definitions import Definition, Entity, FeatureView, _ident
from mloop.features.materialize import MaterializeResult
from mloop.features.registry import Plan, Versioned
from mloop.features.serving import OnlineResult

__all__ = ["HttpFeatureStore"]

_PUSH_CHUNK = 100_000  # the rows one push request may carry (the server's bound)


class HttpFeatureStore(DefinitionSet):
    """``FeatureStore``'s methods, answered by an mloop server (see :class:`mloop.features.FeatureStore`).

    >>> import os
    >>> from mloop.config import Settings
    >>> store = HttpFeatureStore(settings=Settings.load(home="/tmp/mloop-doc", tracking_uri="http://127.0.0.1:1"))
    >>> store.project
    'default'
    """

    def __init__(self, repo: str | Path | None = None, *, project: str = "default", home: str | None = None,
                 settings: Settings | None = None, online_url: str | None = None, api: Any = None) -> None:
        from mloop.tracking._http import HttpTrackingRepository

        super().__init__()
        self.settings = settings or Settings.load(home=home)
        if not self.settings.remote:
            raise InvalidInputError(field="tracking_uri", value="", expected="the URL of an mloop server")
        if online_url is not None:
            raise InvalidInputError(field="online_url", value=online_url,
                                    expected="no online_url: with MLOOP_TRACKING_URI set the server reads its own "
                                             "online store")
        self.project = _ident(project, "project")
        self.api = api or HttpTrackingRepository(self.settings.tracking_uri)
        if repo is not None:
            from mloop.features.repo import load_definitions

            self.add(load_definitions(repo))

    def _call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        params = {k: v for k, v in kwargs.pop("params", {}).items() if v is not None}
        return self.api.call(method, "/features" + path, json, params={"project": self.project, **params}, **kwargs)

    # ------------------------------------------------------------ definitions
    def plan(self, definitions: Sequence[Definition] | None = None) -> Plan:
        """The difference between ``definitions`` (default: the repository's) and the server's registry."""
        specs = _wire.specs_out(self._defs(definitions))
        return _wire.plan_in(self._call("POST", "/definitions/plan", {"definitions": specs}, retry=True))

    def apply(self, definitions: Sequence[Definition] | None = None, *, actor: str | None = None) -> Plan:
        """Validate and store on the server; the registry records the server's view of who asked, never ``actor``."""
        if actor is not None:
            raise InvalidInputError(field="actor", value=actor,
                                    expected="None: through a server, the registry records the token's identity")
        defs = self._defs(definitions)
        self.add(defs)
        # retried: an apply that already landed finds every definition unchanged and stores nothing
        return _wire.plan_in(self._call("POST", "/definitions", {"definitions": _wire.specs_out(defs)}, retry=True))

    def refresh(self) -> None:
        """Nothing to forget here: the server compiles serving plans and drops them when definitions change."""

    def list(self, kind: str | None = None) -> list[Versioned]:
        """The latest version of every definition (of one ``kind`` when given)."""
        return [Versioned(**v) for v in self._call("GET", "/definitions", params={"kind": kind})]

    def search(self, text: str = "", tag: str | None = None, entity: str | None = None) -> list[Versioned]:
        found = self._call("GET", "/definitions", params={"search": text, "tag": tag, "entity": entity})
        return [Versioned(**v) for v in found]

    def describe(self, name: str, version: int | None = None) -> dict[str, Any]:
        """A definition's spec, its versions, and (feature views) watermark and statistics."""
        return dict(self._call("GET", f"/definitions/{quote(name, safe='')}", params={"version": version}))

    def freshness(self) -> list[dict[str, Any]]:
        """Per feature view: latest version and watermark (ISO text, None when never materialized)."""
        return list(self._call("GET", "/freshness"))

    def feature_view(self, name: str, version: int | None = None) -> tuple[FeatureView, int]:
        found = self.describe(name, version)
        if found["kind"] != "feature_view":
            raise InvalidInputError(field="name", value=name, expected=f"a feature view, not a {found['kind']}")
        local = self._local.get(("feature_view", name))
        return FeatureView.from_spec(found["spec"], local if isinstance(local, FeatureView) else None), \
            found["version"]

    def entity(self, name: str) -> Entity:
        return Entity.from_spec(self.describe(name)["spec"])

    # ------------------------------------------------------------ offline
    def training_set(self, entity_df: Any, features: Sequence[str] | None = None, *, service: str | None = None,
                     timestamp_column: str = "event_timestamp", timezone: str | None = None,
                     ambiguous: str = "raise", nonexistent: str = "raise",
                     full_names: bool = False, output: str = "pandas", log_to_run: bool = True) -> Any:
        """Point-in-time-correct features computed by the server (see ``FeatureStore.training_set``).

        The entity rows travel as Parquet (a Parquet path or SQL query is read here first, by this process);
        the answer is recorded in the active run exactly as a direct training set is."""
        from mloop.features.lineage import record_lineage

        if output not in ("pandas", "arrow"):
            raise InvalidInputError(field="output", value=output, expected="'pandas' or 'arrow'")
        options = {"features": list(features) if features is not None else None, "service": service,
                   "timestamp_column": timestamp_column, "timezone": timezone, "ambiguous": ambiguous,
                   "nonexistent": nonexistent, "full_names": full_names}
        body = _wire.parquet_bytes(_entity_rows(entity_df), {"request": options})
        data = self._call("POST", "/training-set", content=body, headers={"content-type": _wire.PARQUET}, retry=True)
        table, meta = _wire.read_parquet(data, "training set")
        frame = table.to_pandas() if output == "pandas" else None
        if log_to_run and meta.get("lineage"):
            record_lineage(frame if frame is not None else table, meta["lineage"])
        return frame if frame is not None else table

    # ------------------------------------------------------------ materialization and push
    def materialize(self, start: datetime | None = None, end: datetime | None = None,
                    views: Sequence[str] | None = None, *, batch_rows: int = 50_000,
                    on_batch: Callable[[int], None] | None = None) -> list[MaterializeResult]:
        """Have the server write the latest value per entity in [start, end] online (``end`` None: now)."""
        _no_callback(on_batch)
        body = {"start": _iso(start, "start"), "end": _iso(end, "end"), "views": _views(views),
                "batch_rows": batch_rows}
        return _wire.materialized_in(self._call("POST", "/materialize", body, retry=True))

    def materialize_incremental(self, end: datetime | None = None, views: Sequence[str] | None = None, *,
                                lateness: timedelta | None = None, batch_rows: int = 50_000) -> list[MaterializeResult]:
        """Have the server materialize each view from its watermark (less ``lateness``) to ``end``."""
        if lateness is not None and not isinstance(lateness, timedelta):
            raise InvalidInputError(field="lateness", value=lateness, expected="a timedelta")
        body = {"end": _iso(end, "end"), "views": _views(views), "incremental": True, "batch_rows": batch_rows,
                "lateness_seconds": None if lateness is None else lateness.total_seconds()}
        return _wire.materialized_in(self._call("POST", "/materialize", body, retry=True))

    def push(self, view: str, rows: Any, *, to: str = "online") -> int:
        """Send fresh rows to the server (online, offline or both), 100,000 rows a request."""
        frame = _frame(rows)
        written = 0
        for start in range(0, max(len(frame), 1), _PUSH_CHUNK):
            body = _records_json(frame.iloc[start:start + _PUSH_CHUNK], to)
            out = self._call("POST", f"/push/{quote(view, safe='')}", content=body,
                             headers={"content-type": "application/json"}, retry=to == "online")
            written += int(out["rows"])
        return written

    # ------------------------------------------------------------ online
    def online(self, features: Sequence[str] | None = None, *,
               entities: dict[str, Sequence[Any]] | list[dict[str, Any]],
               service: str | None = None, request: dict[str, Sequence[Any]] | None = None,
               full_names: bool = False, as_of: datetime | None = None) -> OnlineResult:
        """Latest feature values for ``entities`` from the server's online store (see ``FeatureStore.online``)."""
        columns = _columns(entities)
        body = {"features": list(features) if features is not None else None, "service": service,
                "entities": columns, "request": None if request is None else _columns(request),
                "full_names": full_names, "as_of": _iso(as_of, "as_of")}
        return OnlineResult.from_json(self._call("POST", "/online", body, retry=True), list(columns))

    def serving_plan(self, *args: Any, **kwargs: Any) -> Any:
        raise InvalidInputError(field="serving_plan", value="MLOOP_TRACKING_URI is set",
                                expected="online(...): a serving plan reads the online store in-process, which "
                                         "only the server (or a direct-mode store) has")

    def close(self) -> None:
        self.api.http.close()


def _entity_rows(entity_df: Any) -> Any:
    """The entity rows as Arrow, read in this process (DuckDB only for a Parquet path or a SQL query)."""
    import duckdb

    from mloop.features.offline import entity_arrow

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        return entity_arrow(con, entity_df)
    finally:
        con.close()


def _iso(when: datetime | None, field: str) -> str | None:
    if when is None:
        return None
    if isinstance(when, str):
        return when  # the server reads and checks it, with the same rules as a direct call
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise InvalidInputError(field=field, value=str(when)[:60],
                                expected="a timezone-aware datetime, e.g. datetime(2026, 1, 1, tzinfo=UTC)")
    return when.isoformat()


def _views(views: Sequence[str] | None) -> list[str] | None:
    return list(views) if views else None


def _no_callback(on_batch: Callable[[int], None] | None) -> None:
    if on_batch is not None:
        raise InvalidInputError(field="on_batch", value=on_batch,
                                expected="None: materialization runs on the server, which cannot call back")


def _frame(rows: Any) -> Any:
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        return rows
    if hasattr(rows, "to_pandas"):
        return rows.to_pandas()
    if isinstance(rows, list | dict):
        return pd.DataFrame(rows)
    raise InvalidInputError(field="rows", value=type(rows).__name__,
                            expected="a pandas DataFrame, an Arrow table or a list of records")


def _records_json(frame: Any, to: str) -> bytes:
    """``{"rows": [...], "to": ...}`` as JSON: times as ISO text with their offset (naive ones without, so the server
    refuses them as a direct push does), missing values as null, floats to the last digit."""
    import orjson
    import pandas as pd

    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            out[name] = [None if pd.isna(t) else t.isoformat() for t in out[name]]
    body = {"rows": out.to_dict("records"), "to": to}  # orjson writes NaN as null
    try:
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=_missing)
    except orjson.JSONEncodeError as exc:
        raise InvalidInputError(field="rows", value=str(exc)[:120],
                                expected="numbers, strings, booleans, timestamps or nulls") from None


def _missing(value: Any) -> Any:
    import pandas as pd

    if value is pd.NA or value is pd.NaT:
        return None
    raise TypeError(f"a value of type {type(value).__name__}")


def _columns(entities: Any) -> dict[str, list[Any]]:
    """Entity keys (columns or records) as JSON-ready columns: NumPy scalars become Python values."""
    if isinstance(entities, list):
        if not entities or not all(isinstance(r, dict) for r in entities):
            raise InvalidInputError(field="entities", value=str(entities)[:80],
                                    expected="records like [{'zone_id': 17}] or columns like {'zone_id': [17]}")
        keys = list(entities[0])
        entities = {k: [r.get(k) for r in entities] for k in keys}
    if not isinstance(entities, dict):
        raise InvalidInputError(field="entities", value=type(entities).__name__,
                                expected="columns like {'zone_id': [17]} or records like [{'zone_id': 17}]")
    return {str(k): [v.item() if hasattr(v, "item") else v for v in _listed(k, vs)] for k, vs in entities.items()}


def _listed(key: Any, values: Any) -> list[Any]:
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise InvalidInputError(field=f"entities.{key}", value=values, expected="a list of key values")
    return list(values)
