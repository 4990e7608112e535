"""Read-only REST API of data quality, under ``/api/quality``: the schema and profile logged with a run's data
set (``log_dataset``) or attached to a model version, as the data-quality page renders them, and the drift of a
run's data against a version's training profile (as JSON, and as the HTML report of ``mloop.drift``). Profiles
come without their raw value samples: a page needs the bins, not the rows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

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
    from mloop.monitoring.monitor import training_reference
    from mloop.registry import registry_for

    settings = request.app.state.settings
    registry_for(settings).get_version(name, int(version))  # 404 for an unknown version
    profile, schema = training_reference(name, str(version), settings)
    return {"model": name, "version": int(version), **_out(schema, profile)}


# ---------------------------------------------------------------------- drift against the training profile


def _version_drift(name: str, version: int, run_id: str, dataset: str, settings: Any) -> tuple[Any, list[str]]:
    """The drift of ``run_id``'s logged ``dataset`` profile against the version's training profile, over the
    columns both have; and the training columns the run's data lacks (left out, and said so)."""
    from mloop.errors import NotFoundError
    from mloop.monitoring.monitor import training_reference
    from mloop.registry import registry_for
    from mloop.tracking.client import TrackingClient
    from mloop.validation import attach
    from mloop.validation.drift_detection.compute import drift
    from mloop.validation.profile import Profile

    registry_for(settings).get_version(name, version)  # 404 for an unknown version
    reference, _ = training_reference(name, str(version), settings)
    if reference is None:
        raise NotFoundError(f"{name} v{version} has no training profile: attach_to_model_version(name, version, "
                            "data=train), or log_dataset(run, train) in the run that made it.", field="version")
    client = TrackingClient(settings)
    client.get_run(run_id)
    try:
        current = attach.load_run_profile(client, run_id, dataset)
    except NotFoundError:
        raise NotFoundError(f"Run {run_id[:12]} logged no profile for the data set '{dataset}' (log_dataset(run, "
                            f"data, name='{dataset}')).", field="dataset") from None
    shared = [c for c in reference.columns if c in current.columns
              and current.columns[c].kind == reference.columns[c].kind]
    if not shared:
        raise NotFoundError(f"Run {run_id[:12]}'s '{dataset}' data shares no column with the training data of "
                            f"{name} v{version}.", field="dataset")
    result = drift(Profile({c: reference.columns[c] for c in shared}, reference.rows),
                   Profile({c: current.columns[c] for c in shared}, current.rows))
    return result, [c for c in reference.columns if c not in shared]


Run = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


@router.get("/models/{name}/versions/{version}/drift", responses=error_responses(404))
def version_drift(name: TextPath, version: IdPath, run: Run, request: Request,
                  dataset: Dataset = "train") -> dict[str, Any]:
    """Drift of a run's logged data (its ``dataset`` profile) against the version's training profile: per column
    the method, statistic, effect size and verdict, as ``mloop.drift`` computes them."""
    result, left_out = _version_drift(name, int(version), run, dataset, request.app.state.settings)
    return {"model": name, "version": int(version), "run_id": run, "dataset": dataset, "left_out": left_out,
            **result.to_dict()}


@router.get("/models/{name}/versions/{version}/drift.html", response_class=HTMLResponse,
            responses=error_responses(404))
def version_drift_report(name: TextPath, version: IdPath, run: Run, request: Request,
                         dataset: Dataset = "train") -> HTMLResponse:
    """The same drift as an HTML report, shown in a sandboxed frame: its scripts run, but in an origin of their
    own, so they can reach neither the page nor this server."""
    result, _ = _version_drift(name, int(version), run, dataset, request.app.state.settings)
    title = f"Drift of run {run[:12]} ({dataset}) against {name} v{int(version)}'s training data"
    return HTMLResponse(result.to_html(title=title), headers={
        "Content-Security-Policy": PREVIEW_POLICY, "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
