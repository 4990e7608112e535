"""REST API of the feature store, under ``/api/features``: definitions, online retrieval, push, materialize.

The on-demand views' Python functions live in the feature repository: start the
server with ``MLOOP_FEATURE_REPO=path/to/features.py`` to serve them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from mloop._util.openapi import error_responses
from mloop.errors import InvalidInputError
from mloop.features import FeatureStore
from mloop.server.api._schema import TextPath

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


class MaterializeIn(_Body):
    start: IsoTime | None = None
    end: IsoTime | None = None
    views: list[str] | None = None
    incremental: StrictBool = False


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
    from datetime import UTC

    store = store_for(request, project)
    if body.incremental:
        results = store.materialize_incremental(body.end, body.views)
    else:
        results = store.materialize(body.start, body.end or datetime.now(UTC), body.views)
    return [{"view": r.view, "version": r.version, "rows": r.rows, "batches": r.batches,
             "resumed_from": r.resumed_from, "seconds": r.seconds} for r in results]
