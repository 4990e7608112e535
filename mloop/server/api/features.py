"""REST API of the feature store, under ``/api/features``: definitions (list, describe, plan, apply), training
sets, online retrieval, push, materialize and freshness. ``HttpFeatureStore`` is its client.

The on-demand views' Python functions live in the feature repository: start the
server with ``MLOOP_FEATURE_REPO=path/to/features.py`` to serve them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, StrictInt

from mloop._util.openapi import error_responses
from mloop.errors import InvalidInputError
from mloop.features import FeatureStore, _wire
from mloop.server.api._schema import TextPath
from mloop.server.auth import actor_of

router = APIRouter(prefix="/features", tags=["features"])
_lock = threading.Lock()
Project = Annotated[str, Query(pattern=r"^[A-Za-z0-9_\-]{1,128}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _iso_text(value: Any) -> Any:
    # pydantic would read a number as seconds since 1970; the API documents ISO 8601 text
    if not isinstance(value, str | datetime):
        raise ValueError(f"expected an ISO 8601 timestamp with a zone, got {type(value).__name__}")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_text)]


class OnlineIn(_Body):
    features: list[str] | None = None
    service: str | None = None
    entities: dict[str, list[Any]]
    request: dict[str, list[Any]] | None = None
    full_names: StrictBool = False
    as_of: IsoTime | None = None


class PushIn(_Body):
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)
    to: str = "online"


class DefinitionIn(_Body):
    kind: Literal["entity", "feature_view", "on_demand_feature_view", "feature_service"]
    spec: dict[str, Any]


class DefinitionsIn(_Body):
    definitions: list[DefinitionIn] = Field(max_length=10_000)


class MaterializeIn(_Body):
    start: IsoTime | None = None
    end: IsoTime | None = None
    views: list[str] | None = None
    incremental: StrictBool = False
    batch_rows: StrictInt = Field(50_000, ge=1, le=10_000_000)
    lateness_seconds: Annotated[float, Strict(), Field(ge=0, le=10 * 365 * 86400)] | None = None


# Stores kept per project: any caller can name a project, so the cache is bounded (least recently used goes; a
# request still holding it finishes, and the store is closed when the last reference is dropped).
MAX_STORES = 32


def store_for(request: Request, project: str = "default") -> FeatureStore:
    """The app's FeatureStore for ``project`` (created once, serving plans cached inside)."""
    stores: OrderedDict[str, FeatureStore] = request.app.state.__dict__.setdefault("feature_stores", OrderedDict())
    with _lock:
        store = stores.get(project)
        if store is None:
            store = FeatureStore(os.environ.get("MLOOP_FEATURE_REPO") or None, project=project,
                                 settings=request.app.state.settings)
            stores[project] = store
            while len(stores) > MAX_STORES:
                stores.popitem(last=False)
        else:
            stores.move_to_end(project)
    return store


@router.get("/definitions")
def list_definitions(request: Request, project: Project = "default", kind: str | None = None, search: str = "",
                     tag: str | None = None, entity: str | None = None) -> list[dict[str, Any]]:
    found = store_for(request, project).search(search, tag, entity)
    return [v.to_dict() for v in found if kind is None or v.kind == kind]


def _definitions(store: FeatureStore, body: DefinitionsIn) -> list[Any]:
    local = {(d.kind, d.name): d for d in store.definitions}
    return _wire.definitions_in([d.model_dump() for d in body.definitions], local,
                                store.settings.feature_source_roots)


@router.post("/definitions/plan", responses=error_responses(422))
def plan_definitions(body: DefinitionsIn, request: Request, project: Project = "default") -> dict[str, Any]:
    """What applying these definitions (each a ``{kind, spec}``) would change, without changing anything."""
    store = store_for(request, project)
    return _wire.plan_out(store.plan(_definitions(store, body)))


@router.post("/definitions", responses=error_responses(409, 422))
def apply_definitions(body: DefinitionsIn, request: Request, project: Project = "default") -> dict[str, Any]:
    """Validate and store a new version of each changed definition, recorded as the request's identity.

    File sources must lie under the server's ``feature_source_roots``; SQL sources and on-demand functions are
    code and come only from the server's own repository (``MLOOP_FEATURE_REPO``)."""
    store = store_for(request, project)
    plan = store.apply(_definitions(store, body), actor=actor_of(request, store.settings.user))
    return _wire.plan_out(plan)


@router.get("/freshness")
def freshness(request: Request, project: Project = "default") -> list[dict[str, Any]]:
    """Each feature view's latest version and watermark (everything up to it has been materialized online)."""
    return store_for(request, project).freshness()


class TrainingSetIn(_Body):
    """The options of ``FeatureStore.training_set``, sent in the entity Parquet's metadata (key ``mloop``, under
    ``request``) so that hundreds of feature references never make a URL too long."""

    features: list[Annotated[str, Field(max_length=1024)]] | None = Field(None, max_length=100_000)
    service: str | None = Field(None, max_length=300)
    timestamp_column: str = Field("event_timestamp", max_length=300)
    timezone: str | None = Field(None, max_length=64)
    ambiguous: str = Field("raise", max_length=32)
    nonexistent: str = Field("raise", max_length=32)
    full_names: StrictBool = False


@router.post("/training-set", responses=error_responses(404, 413, 422),
             openapi_extra={"requestBody": {"required": True, "content": {
                 _wire.PARQUET: {"schema": {"type": "string", "format": "binary"}}}}})
async def training_set(request: Request, project: Project = "default") -> Response:
    """Point-in-time-correct features for the entity rows in the body (Parquet, at most the server's request
    limit; the options of ``TrainingSetIn`` in its metadata), computed here where the offline sources live. The
    answer is Parquet too, with the training set's lineage in its metadata so the client's run records it."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError
    from starlette.concurrency import run_in_threadpool

    from mloop.features.lineage import training_lineage

    if request.headers.get("content-type", "").split(";")[0].strip() != _wire.PARQUET:
        raise InvalidInputError(field="content-type", value=request.headers.get("content-type"),
                                expected=_wire.PARQUET)
    entities, meta = _wire.read_parquet(await request.body(), "entity_df")
    try:
        options = TrainingSetIn.model_validate(meta.get("request") or {})
    except ValidationError as exc:  # answered like any other bad body: 422 naming the field
        raise RequestValidationError(exc.errors()) from None
    store = store_for(request, project)

    def build() -> bytes:
        args = options.model_dump()
        features, service, full_names = args.pop("features"), args.pop("service"), args["full_names"]
        table = store.training_set(entities, features, service=service, output="arrow", log_to_run=False, **args)
        lineage = training_lineage(store.resolve(features, service, full_names), store.project)
        return _wire.parquet_bytes(table, {"lineage": lineage})

    return Response(await run_in_threadpool(build), media_type=_wire.PARQUET)


@router.get("/definitions/{name}")
def describe(name: TextPath, request: Request, project: Project = "default",
             version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> dict[str, Any]:
    return store_for(request, project).describe(name, version)


@router.post("/online", responses=error_responses(404))
def online(body: OnlineIn, request: Request, project: Project = "default") -> dict[str, Any]:
    """Latest values for ``entities`` with per-view status (present / not_found / expired / after_as_of) and
    event times; ``as_of`` (ISO 8601 with a zone) replays a past moment and never returns a later value."""
    result = store_for(request, project).online(body.features, service=body.service, entities=body.entities,
                                                request=body.request, full_names=body.full_names, as_of=body.as_of)
    return result.to_json()


@router.post("/push/{view}")
def push(view: TextPath, body: PushIn, request: Request, project: Project = "default") -> dict[str, Any]:
    """Write fresh rows (timestamps as ISO strings with a zone) online, offline or both."""
    import pandas as pd

    store = store_for(request, project)
    frame = pd.DataFrame(body.rows)
    fv, _ = store.feature_view(view)
    for column in {fv.timestamp, fv.created_timestamp} - {None}:
        if column in frame.columns:
            try:
                frame[column] = pd.to_datetime(frame[column], format="ISO8601")
            except (ValueError, TypeError) as exc:  # an unparseable value: a 400 naming it, not a 500
                raise InvalidInputError(field=f"rows.{column}", value=str(exc).split(",")[0],
                                        expected="ISO 8601 timestamps with a zone, e.g. "
                                                 "'2026-01-01T12:00:00+00:00'") from None
    return {"view": view, "rows": store.push(view, frame, to=body.to)}


@router.post("/materialize", responses=error_responses(404))
def materialize(body: MaterializeIn, request: Request, project: Project = "default") -> list[dict[str, Any]]:
    from datetime import UTC, timedelta

    store = store_for(request, project)
    if body.incremental:
        lateness = None if body.lateness_seconds is None else timedelta(seconds=body.lateness_seconds)
        results = store.materialize_incremental(body.end, body.views, lateness=lateness, batch_rows=body.batch_rows)
    else:
        results = store.materialize(body.start, body.end or datetime.now(UTC), body.views, batch_rows=body.batch_rows)
    return _wire.materialized_out(results)
