"""Read-only REST API of data quality, under ``/api/quality``: the schema and profile logged with a run's data
set (``log_dataset``) or attached to a model version, as the data-quality page renders them. Profiles come
without their raw value samples: a page needs the bins, not the rows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mloop._util.openapi import error_responses
from mloop.server.api._schema import TextPath
from mloop.server.api.registry import IdPath

router = APIRouter(prefix="/quality", tags=["quality"])
Dataset = Annotated[str, Query(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]


def _out(schema: Any, profile: Any) -> dict[str, Any]:
    found = None if profile is None else profile.to_dict()
    for column in (found or {}).get("columns", {}).values():
        column.pop("sample", None)
    return {"schema": None if schema is None else schema.to_dict(), "profile": found}


@router.get("/runs/{run_id}", responses=error_responses(404))
def run_quality(run_id: TextPath, request: Request, dataset: Dataset = "train") -> dict[str, Any]:
    """The schema and profile logged for ``dataset`` in a run (each null when not logged)."""
    from mloop.errors import NotFoundError
    from mloop.tracking.client import TrackingClient
    from mloop.validation import attach

    client = TrackingClient(request.app.state.settings)
    client.get_run(run_id)  # an unknown run is a 404, not two empty reports
    found = []
    for load in (attach.load_run_schema, attach.load_run_profile):
        try:
            found.append(load(client, run_id, dataset))
        except NotFoundError:
            found.append(None)
    return {"run_id": run_id, "dataset": dataset, **_out(*found)}


@router.get("/models/{name}/versions/{version}", responses=error_responses(404))
def version_quality(name: TextPath, version: IdPath, request: Request) -> dict[str, Any]:
    """The training schema and profile of a model version (attached to it, else logged in its run)."""
    from mloop.monitoring.monitor import training_reference
    from mloop.registry import registry_for

    settings = request.app.state.settings
    registry_for(settings).get_version(name, int(version))  # 404 for an unknown version
    profile, schema = training_reference(name, str(version), settings)
    return {"model": name, "version": int(version), **_out(schema, profile)}


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    profile: dict[str, Any] | None = None


@router.post("/models/{name}/versions/{version}", responses=error_responses(404, 422))
def attach_quality(name: TextPath, version: IdPath, body: AttachIn, request: Request) -> dict[str, Any]:
    """Store a version's training schema and/or profile (as ``to_dict()``), recorded as the request's identity;
    what ``attach_to_model_version`` does for a client with ``MLOOP_TRACKING_URI`` set. Answers the version."""
    from mloop.server.api.registry import _registry
    from mloop.validation import attach
    from mloop.validation.profile import Profile
    from mloop.validation.schema import load_schema

    registry = _registry(request)
    registry.get_version(name, int(version))  # an unknown version is a 404 before its body is judged
    schema = None if body.schema_ is None else load_schema(body.schema_)
    profile = None if body.profile is None else Profile.from_dict(body.profile)
    mv = attach.attach_to_model_version(name, int(version), schema=schema, profile=profile, registry=registry)
    return mv.to_dict()


@router.get("/models/{name}/versions/{version}/{what}", responses=error_responses(404))
def stored_quality(name: TextPath, version: IdPath, what: Literal["schema", "profile"], request: Request) -> Response:
    """The training schema or profile attached to a version, as stored (profiles with their value samples, which
    drift's exact small-sample tests use); 404 when none is attached."""
    from mloop.server.api.registry import _registry
    from mloop.validation import attach

    tag = attach.SCHEMA_TAG if what == "schema" else attach.PROFILE_TAG
    return Response(attach.stored_blob(name, int(version), tag, _registry(request)), media_type="application/json")
