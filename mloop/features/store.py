"""``FeatureStore``: definitions, training sets, materialization and online reads in one object.

>>> import tempfile, pandas as pd
>>> from datetime import timedelta
>>> from mloop.features import Entity, FeatureView, Field, Float64, FeatureStore
>>> home = tempfile.mkdtemp()
>>> rows = pd.DataFrame({"zone_id": [1, 1], "avg_fare": [10.0, 12.0],
...                      "event_timestamp": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True)})
>>> zone = Entity("zone", join_keys=["zone_id"])
>>> fares = FeatureView("fares", entities=[zone], schema=[Field("avg_fare", Float64)], source=rows,
...                     ttl=timedelta(days=7))
>>> store = FeatureStore(home=home)
>>> print(store.apply([zone, fares]))
+ entity zone (new, v1)
+ feature view fares (new, v1)
2 to apply, 0 unchanged.
>>> when = pd.to_datetime(["2026-01-01 12:00", "2026-01-03 00:00"], utc=True)
>>> store.training_set(pd.DataFrame({"zone_id": [1, 1], "event_timestamp": when}),
...                    features=["fares:avg_fare"])["avg_fare"].tolist()
[10.0, 12.0]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.features._defs import DefinitionSet
from mloop.features.definitions import (
    Definition,
    Entity,
    FeatureView,
)
from mloop.features.materialize import (
    MaterializeResult,
    feature_stats,
    materialize_view,
    online_table,
    watermark,
)
from mloop.features.online import OnlineStore, open_online_store
from mloop.features.plan import Request
from mloop.features.push import push_rows
from mloop.features.registry import FeatureRegistry, Plan, Versioned
from mloop.features.resolve import resolve_request
from mloop.features.serving import OnlineResult, ServingPlan
from mloop.features.validate import validate_definitions
from mloop.store.sql import open_database

__all__ = ["FeatureStore"]


class FeatureStore(DefinitionSet):
    """The feature store of one project: a registry in the metadata DB, DuckDB offline, SQLite/Redis online.

    ``repo`` is a ``features.py`` file or a folder of definition files; definitions can also be passed
    to :meth:`apply` directly. ``online_url`` defaults to the settings' ``online_url`` (SQLite).

    With ``MLOOP_TRACKING_URI`` set (``settings.remote``), ``FeatureStore(...)`` is an
    :class:`~mloop.features._http.HttpFeatureStore` with the same methods, which asks the server: the
    registry, the offline sources and the online store are the server's, and the client holds no credentials.
    """

    def __new__(cls, repo: str | Path | None = None, *, project: str = "default", home: str | None = None,
                settings: Settings | None = None, online_url: str | None = None) -> Any:
        # The one place that picks the transport (as pathlib.Path picks PosixPath): every caller, SDK, CLI and
        # serving, writes FeatureStore(...) and reaches the server whenever the settings point at one.
        settings = settings or Settings.load(home=home)
        if cls is FeatureStore and settings.remote:
            from mloop.features._http import HttpFeatureStore

            return HttpFeatureStore(repo, project=project, settings=settings, online_url=online_url)
        return super().__new__(cls)

    def __init__(self, repo: str | Path | None = None, *, project: str = "default", home: str | None = None,
                 settings: Settings | None = None, online_url: str | None = None) -> None:
        from mloop.features.definitions import _ident

        super().__init__()
        self.settings = settings or Settings.load(home=home)
        self.project = _ident(project, "project")
        self.db = open_database(self.settings.db_url)
        self.registry = FeatureRegistry(self.db, self.project)
        self.online_url = online_url or self.settings.online_url
        self._online: OnlineStore | None = None
        self._plans: dict[Any, ServingPlan] = {}
        self._lock = threading.Lock()
        self._duck: Any = None
        if repo is not None:
            from mloop.features.repo import load_definitions

            self.add(load_definitions(repo))

    # ------------------------------------------------------------ definitions
    def _duckdb(self) -> Any:
        import duckdb

        with self._lock:
            if self._duck is None:
                self._duck = duckdb.connect()
                self._duck.execute("SET TimeZone='UTC'")
        return self._duck.cursor()

    def plan(self, definitions: Sequence[Definition] | None = None) -> Plan:
        """The difference between ``definitions`` (default: the repository's) and the registry."""
        return self.registry.plan(self._defs(definitions))

    def apply(self, definitions: Sequence[Definition] | None = None, *, actor: str | None = None) -> Plan:
        """Validate, then store an immutable new version of every changed definition.

        ``actor`` is who the registry records (default: the settings' user; a server passes the request's identity).
        """
        defs = self._defs(definitions)
        self.add(defs)
        con = self._duckdb()
        try:
            validate_definitions(defs, self.registry, con)
        finally:
            con.close()
        plan = self.registry.store(defs, actor or self.settings.user)
        if plan.has_changes:
            self.refresh()
        return plan

    def refresh(self) -> None:
        """Forget compiled serving plans (call after definitions change in another process)."""
        self._plans.clear()

    def list(self, kind: str | None = None) -> list[Versioned]:
        """The latest version of every definition (``kind``: entity, feature_view, on_demand_feature_view,
        feature_service)."""
        return self.registry.list(kind)

    def search(self, text: str = "", tag: str | None = None, entity: str | None = None) -> list[Versioned]:
        return self.registry.search(text, tag, entity)

    def describe(self, name: str, version: int | None = None) -> dict[str, Any]:
        """A definition's spec, its versions, and (feature views) watermark and statistics."""
        found = self.registry.find(name, ("feature_view", "on_demand_feature_view", "feature_service", "entity"),
                                   version)
        if found is None:
            raise NotFoundError(f"No definition named '{name}' in project '{self.project}'.", field="name")
        out = found.to_dict()
        out["versions"] = [v.version for v in self.registry.history(found.kind, name)]
        if found.kind == "feature_view":
            out["watermark"] = self._watermark_text(name)
            out["statistics"] = feature_stats(self.db, self.project, name, version)
        return out

    def freshness(self) -> list[dict[str, Any]]:
        """Per feature view: its latest version, and its watermark (everything up to it is online) as ISO text,
        None when never materialized."""
        return [{"view": v.name, "version": v.version, "online": v.spec.get("online", True),
                 "watermark": self._watermark_text(v.name)} for v in self.registry.list("feature_view")]

    def _watermark_text(self, view: str) -> str | None:
        mark = watermark(self.db, self.project, view)
        return None if mark is None else datetime.fromtimestamp(mark / 1e6, tz=UTC).isoformat()

    def feature_view(self, name: str, version: int | None = None) -> tuple[FeatureView, int]:
        v = self.registry.get("feature_view", name, version)
        local = self._local.get(("feature_view", name))
        return FeatureView.from_spec(v.spec, local if isinstance(local, FeatureView) else None), v.version

    def entity(self, name: str) -> Entity:
        return Entity.from_spec(self.registry.get("entity", name).spec)

    # ------------------------------------------------------------ resolution
    def resolve(self, features: Sequence[str] | None = None, service: str | None = None,
                full_names: bool = False) -> Request:
        """Turn references (or a service name, optionally ``"name@version"``) into a resolved request."""
        return resolve_request(self, features, service, full_names)

    # ------------------------------------------------------------ offline
    def training_set(self, entity_df: Any, features: Sequence[str] | None = None, *, service: str | None = None,
                     timestamp_column: str = "event_timestamp", timezone: str | None = None,
                     ambiguous: str = "raise", nonexistent: str = "raise",
                     full_names: bool = False, output: str = "pandas", log_to_run: bool = True) -> Any:
        """Point-in-time-correct features for each entity row (see ``mloop.features.offline``).

        ``entity_df``: a DataFrame, Arrow table, Parquet path or SQL query with the join keys and a
        timezone-aware ``timestamp_column`` (of any unit). Naive times are refused unless ``timezone``
        names the zone they are wall-clock times in; local times that a daylight-saving change repeats
        or skips are refused too unless ``ambiguous`` (``"earliest"``, ``"latest"``, ``"infer"``,
        ``"NaT"``) or ``nonexistent`` (``"shift_forward"``, ``"shift_backward"``, ``"NaT"``) says
        which instant they mean (see ``mloop.features.localtime``).
        Returns pandas (``output="pandas"``) or Arrow (``"arrow"``).
        Inside a tracking run (``mloop.start_run``) or a flow step, the result is recorded as that run's
        ``training`` dataset input with its feature views and references (``log_to_run=False``: not recorded).
        """
        from mloop.features.lineage import record_training_set
        from mloop.features.offline import apply_on_demand, entity_table, point_in_time_join

        if output not in ("pandas", "arrow"):
            raise InvalidInputError(field="output", value=output, expected="'pandas' or 'arrow'")
        request = self.resolve(features, service, full_names)
        con = self._duckdb()
        try:
            entities = entity_table(con, entity_df, timestamp_column, timezone, ambiguous, nonexistent)
            table = point_in_time_join(con, entities, timestamp_column, request, full_names)
        finally:
            con.close()
        frame = None
        if request.on_demand:
            frame = apply_on_demand(table.to_pandas(), request)
        if frame is None and output == "pandas":
            frame = table.to_pandas()
        if log_to_run:
            record_training_set(frame if frame is not None else table, request, self.project)
        if output == "arrow":
            import pyarrow as pa

            return pa.Table.from_pandas(frame, preserve_index=False) if frame is not None else table
        return frame

    # ------------------------------------------------------------ materialization
    @property
    def online_store(self) -> OnlineStore:
        with self._lock:
            if self._online is None:
                self._online = open_online_store(self.online_url, self.project)
        return self._online

    def _online_views(self, views: Sequence[str] | None) -> list[tuple[FeatureView, int]]:
        if views:
            return [self.feature_view(v) for v in views]
        return [self.feature_view(v.name) for v in self.registry.list("feature_view") if v.spec.get("online", True)]

    def materialize(self, start: datetime | None = None, end: datetime | None = None,
                    views: Sequence[str] | None = None, *, batch_rows: int = 50_000,
                    on_batch: Callable[[int], None] | None = None) -> list[MaterializeResult]:
        """Write the latest value per entity with event time in [start, end] online, for each view
        (``start`` None: from the beginning; ``end`` None: now)."""
        end = _aware(end or datetime.now(UTC), "end")
        start = _aware(start, "start") if start is not None else None
        results = []
        for view, version in self._online_views(views):
            keys = self.keys_of(view)
            con = self._duckdb()
            try:
                results.append(materialize_view(con, self.db, self.online_store, self.project, view, version, keys,
                                                start, end, batch_rows, on_batch))
            finally:
                con.close()
        return results

    def materialize_incremental(self, end: datetime | None = None, views: Sequence[str] | None = None, *,
                                lateness: Any = None, batch_rows: int = 50_000) -> list[MaterializeResult]:
        """Materialize from each view's watermark to ``end`` (default now).

        The window starts ``lateness`` before the watermark (default: the view's TTL), so rows that
        arrive late with an event time inside the TTL are still picked up; writes stay monotonic.
        """
        end = _aware(end or datetime.now(UTC), "end")
        results = []
        for view, _ in self._online_views(views):
            mark = watermark(self.db, self.project, view.name)
            start = None
            if mark is not None:
                start = datetime.fromtimestamp(mark / 1e6, tz=UTC) - (lateness or view.ttl or (end - end))
            results += self.materialize(start, end, [view.name], batch_rows=batch_rows)
        return results

    def keys_of(self, view: FeatureView) -> list[str]:
        keys: list[str] = []
        for e in view.entity_names:
            keys += [k for k in self.entity(e).join_keys if k not in keys]
        return keys

    def push(self, view: str, rows: Any, *, to: str = "online") -> int:
        """Write fresh rows: ``to="online"``, ``"offline"`` (appended as a Parquet file to a folder source)
        or ``"both"``. Online writes keep the latest row per entity and never move time back."""
        return push_rows(self, view, rows, to)

    # ------------------------------------------------------------ online
    def online(self, features: Sequence[str] | None = None, *,
               entities: dict[str, Sequence[Any]] | list[dict[str, Any]],
               service: str | None = None, request: dict[str, Sequence[Any]] | None = None,
               full_names: bool = False, as_of: datetime | None = None) -> OnlineResult:
        """Latest feature values for ``entities`` (``{"zone_id": [17, 18]}`` or records
        ``[{"zone_id": 17}, ...]``), with event times and status.

        ``request`` carries the request-time inputs of on-demand views. The serving plan for a given
        feature list or service is compiled on first use and cached (``refresh()`` forgets it).
        TTLs are checked against now, or against ``as_of`` (a timezone-aware datetime) when replaying
        a past moment: the online store keeps only the latest value of each entity, so a value whose
        event time is after ``as_of`` is withheld (None, status ``"after_as_of"``), never returned.
        ``training_set`` answers any past moment exactly from the offline store.
        """
        key = (service, tuple(features) if features is not None else None, full_names)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._compile(features, service, full_names)
        plan.check_keys(entities)
        return plan.read(entities, request, as_of)

    def serving_plan(self, features: Sequence[str] | None = None, *, service: str | None = None,
                     full_names: bool = False) -> ServingPlan:
        """The compiled plan (call ``plan.read(entities, request)`` on a hot path to skip the cache lookup)."""
        key = (service, tuple(features) if features is not None else None, full_names)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._compile(features, service, full_names)
        return plan

    def _compile(self, features: Sequence[str] | None, service: str | None, full_names: bool) -> ServingPlan:
        request = self.resolve(features, service, full_names)
        index = {v.view.name: {f: i for i, f in enumerate(v.view.feature_names)} for v in request.views}
        tables = [(online_table(self.project, v.view.name, v.version), len(v.view.feature_names))
                  for v in request.views]
        from mloop.features.lookup import entity_key_types, key_checker

        plan = ServingPlan(request, self.online_store.batch_reader(tables), index)
        types = plan.key_types = entity_key_types(self, [v.view for v in request.views])
        plan.check_keys = key_checker(types)
        return plan

    def close(self) -> None:
        if self._online is not None:
            self._online.close()
        if self._duck is not None:
            self._duck.close()
            self._duck = None


def _aware(value: datetime, field: str) -> datetime:
    import pandas as pd

    if isinstance(value, str):
        value = pd.Timestamp(value).to_pydatetime()
    if not isinstance(value, datetime):
        raise InvalidInputError(field=field, value=value, expected="a datetime")
    if value.tzinfo is None:
        raise InvalidInputError(field=field, value=str(value),
                                expected="a timezone-aware datetime, e.g. datetime(2026, 1, 1, tzinfo=UTC)")
    return value
