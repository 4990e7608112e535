"""Read-only REST API of data quality, under ``/api/quality``: the schema and profile logged with a run's data
set (``log_dataset``) or attached to a model version, as the data-quality page renders them, and the drift of a
run's data against a version's training profile (as JSON, and as the HTML report of ``mloop.drift``). Profiles
come without their raw value samples: a page needs the bins, not the rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from mloop._util.openapi import error_responses
from mloop.server.api._schema import TextPath
from mloop.server.api.browse import PREVIEW_POLICY
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
    from mloop.monitoring._runner import training_reference
    from mloop.registry import registry_for

    settings = request.app.state.settings
    registry_for(settings).get_version(name, int(version))  # 404 for an unknown version
    profile, schema = training_reference(name, str(version), settings)
    return {"model": name, "version": int(version), **_out(schema, profile)}


# ---------------------------------------------------------------------- drift against the training profile


@dataclass(frozen=True, slots=True)
class Current:
    """What the training profile is compared with: a run's logged data set, or a monitor's latest windows."""

    run: str | None = None
    dataset: str = "train"
    monitor: str | None = None
    windows: int = 12

    def describe(self) -> str:
        if self.monitor is not None:
            return f"the last {self.windows} windows of monitor {self.monitor}"
        return f"run {str(self.run)[:12]} ({self.dataset})"


def _current_profile(current: Current, name: str, version: int, settings: Any) -> tuple[Any, dict[str, Any]]:
    """The profile to compare and what it is (for the answer)."""
    from mloop.errors import InvalidInputError, NotFoundError
    from mloop.tracking.client import TrackingClient
    from mloop.validation import attach

    if (current.run is None) == (current.monitor is None):
        raise InvalidInputError(field="run", value=None, expected="either run (a run's logged data set) or "
                                                                   "monitor (its latest windows), not both")
    if current.monitor is not None:
        from mloop.monitoring.monitor import get_monitor
        from mloop.monitoring.recent import recent_profile

        if get_monitor(current.monitor, settings).model != name:
            raise InvalidInputError(field="monitor", value=current.monitor, expected=f"a monitor of {name}")
        found = recent_profile(current.monitor, str(version), current.windows, settings=settings)
        return found.profile, {"monitor": current.monitor, "windows": found.windows, "first": found.first,
                               "last": found.last}
    client = TrackingClient(settings)
    client.get_run(current.run)
    try:
        profile = attach.load_run_profile(client, current.run, current.dataset)
    except NotFoundError:
        raise NotFoundError(f"Run {current.run[:12]} logged no profile for the data set '{current.dataset}' "
                            f"(log_dataset(run, data, name='{current.dataset}')).", field="dataset") from None
    return profile, {"run_id": current.run, "dataset": current.dataset}


def _version_drift(name: str, version: int, current: Current, settings: Any) -> tuple[Any, dict[str, Any]]:
    """The drift of ``current`` against the version's training profile over the columns both have, and what was
    compared: the source, and the training columns the current data lacks (left out, and said so)."""
    from mloop.errors import NotFoundError
    from mloop.monitoring._runner import training_reference
    from mloop.registry import registry_for
    from mloop.validation.drift_detection.compute import drift
    from mloop.validation.profile import Profile

    registry_for(settings).get_version(name, version)  # 404 for an unknown version
    reference, _ = training_reference(name, str(version), settings)
    if reference is None:
        raise NotFoundError(f"{name} v{version} has no training profile: attach_to_model_version(name, version, "
                            "data=train), or log_dataset(run, train) in the run that made it.", field="version")
    profile, source = _current_profile(current, name, version, settings)
    shared = [c for c in reference.columns if c in profile.columns
              and profile.columns[c].kind == reference.columns[c].kind]
    if not shared:
        raise NotFoundError(f"{current.describe()} shares no column with the training data of {name} v{version}.",
                            field="monitor" if current.monitor else "dataset")
    result = drift(Profile({c: reference.columns[c] for c in shared}, reference.rows),
                   Profile({c: profile.columns[c] for c in shared}, profile.rows))
    return result, {**source, "left_out": [c for c in reference.columns if c not in shared]}


Run = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
Monitor = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")]
Windows = Annotated[int, Query(ge=1, le=1000)]


@router.get("/models/{name}/versions/{version}/drift", responses=error_responses(404, 422))
def version_drift(name: TextPath, version: IdPath, request: Request, run: Run = None, dataset: Dataset = "train",
                  monitor: Monitor = None, windows: Windows = 12) -> dict[str, Any]:
    """Drift against the version's training profile of a run's logged data (``run``, its ``dataset`` profile) or
    of recent traffic (``monitor``: its last ``windows`` windows of this version, merged): per column the method,
    statistic, effect size and verdict, as ``mloop.drift`` computes them."""
    result, source = _version_drift(name, int(version), Current(run, dataset, monitor, windows),
                                    request.app.state.settings)
    return {"model": name, "version": int(version), **source, **result.to_dict()}


@router.get("/models/{name}/versions/{version}/drift.html", response_class=HTMLResponse,
            responses=error_responses(404, 422))
def version_drift_report(name: TextPath, version: IdPath, request: Request, run: Run = None,
                         dataset: Dataset = "train", monitor: Monitor = None, windows: Windows = 12) -> HTMLResponse:
    """The same drift as an HTML report, shown in a sandboxed frame: its scripts run, but in an origin of their
    own, so they can reach neither the page nor this server."""
    current = Current(run, dataset, monitor, windows)
    result, _ = _version_drift(name, int(version), current, request.app.state.settings)
    title = f"Drift of {current.describe()} against {name} v{int(version)}'s training data"
    return HTMLResponse(result.to_html(title=title), headers={
        "Content-Security-Policy": PREVIEW_POLICY, "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
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
