"""Browsing over REST: the reads a page of the web UI needs in one request (a page of a runs table, a chart
window of a metric, the model versions of a run, an artifact shown inline). Mounted under ``/api`` with tracking."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, StrictBool

from mloop._util.openapi import error_responses
from mloop.server.api import _schema
from mloop.server.api._schema import TextPath
from mloop.server.api.tracking import _FILE, IdText, Repo, get_artifact
from mloop.server.visibility import experiments_for_search, keep_visible, visible_models
from mloop.tracking._wire import float_out

router = APIRouter(tags=["tracking"])

# the key as the store keeps it: text without NUL (the server's edge refuses a NUL in any query value)
MetricKeyQuery = Annotated[str, Query(min_length=1, max_length=250,
                                      json_schema_extra=_schema.documented(_schema.NO_NUL_PATTERN))]


class PageIn(BaseModel):
    experiment_ids: list[Annotated[str, Field(max_length=32)]] = Field(default=[], max_length=1000)
    filter: str = Field(default="", max_length=10_000)
    order_by: list[Annotated[str, Field(max_length=300)]] | None = Field(default=None, max_length=10)
    offset: int = Field(default=0, strict=True, ge=0, le=_schema.INT64_MAX)
    limit: int = Field(default=50, strict=True, ge=1, le=1000)
    parent_run_id: IdText | None = Field(default=None, max_length=32, description="Only the children of this run.")
    roots_only: StrictBool = Field(default=False, description="Only runs without a parent (children fold under).")
    with_columns: StrictBool = Field(default=True, description="List the column keys of every matching run.")


@router.post("/runs/page", responses=error_responses(404))
def runs_page(body: PageIn, r: Repo, request: Request) -> dict[str, Any]:
    """One page of a runs table: each run with its params, latest metrics, tags and count of children; the
    number of runs matching; and the param, metric and tag keys of all of them (for a column chooser). Only the
    experiments the caller may see are searched, so pages and the total count visible runs."""
    from mloop.tracking._browse import runs_page as page

    experiments = experiments_for_search(request, body.experiment_ids)
    found = page(r, experiments, body.filter, body.order_by, body.offset, body.limit, body.parent_run_id,
                 body.roots_only, body.with_columns)
    return dataclasses.asdict(found)


@router.get("/runs/{run_id}/metric-window")
def metric_window(run_id: TextPath, key: MetricKeyQuery, r: Repo,
                  start: Annotated[int | None, Query(ge=_schema.INT64_MIN, le=_schema.INT64_MAX)] = None,
                  end: Annotated[int | None, Query(ge=_schema.INT64_MIN, le=_schema.INT64_MAX)] = None,
                  max_points: Annotated[int, Query(ge=4, le=100_000)] = 2000, sample: bool = False) -> dict[str, Any]:
    """The points of a metric with ``start <= step <= end`` for a chart, downsampled to ``max_points`` keeping
    each bucket's extremes; a chart zoomed in asks again for the visible steps and gets their detail. The key is a
    query parameter, since metric keys hold slashes (``system/cpu_percent``). ``sample=true`` answers a quick
    preview of a long window (one point near each of ``max_points`` evenly spaced steps; ``total`` null)."""
    from mloop.tracking._browse import metric_window as window

    found = window(r, run_id, key, start, end, max_points, sample)
    return {"key": key, "total": found.total, "first_step": found.first_step, "last_step": found.last_step,
            "steps": [p.step for p in found.points], "timestamps": [p.timestamp for p in found.points],
            "values": [float_out(p.value) for p in found.points]}


@router.get("/runs/{run_id}/model-versions")
def run_model_versions(run_id: TextPath, r: Repo, request: Request) -> list[dict[str, Any]]:
    """The registered model versions made from this run's artifacts (lineage from a run to its models)."""
    from sqlalchemy import select

    from mloop.registry import _tables as registry_tables

    versions = registry_tables.model_versions
    with r.db.read() as conn:
        r._require_run(conn, run_id)
        rows = conn.execute(select(versions.c.name, versions.c.version, versions.c.status, versions.c.created)
                            .where(versions.c.run_id == run_id).order_by(versions.c.name, versions.c.version))
        found = [{"name": n, "version": v, "status": s, "created": c} for n, v, s, c in rows]
    return keep_visible(found, lambda v: v["name"], visible_models(request, [v["name"] for v in found]))


PREVIEW_POLICY = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
                   "style-src 'unsafe-inline'; img-src data:; font-src data:")


@router.get("/runs/{run_id}/preview/{path:path}", response_class=FileResponse,
            responses={**_FILE, **error_responses(404)})
def preview_artifact(run_id: TextPath, path: _schema.PlainPath, r: Repo) -> FileResponse:
    """An artifact shown in the page rather than downloaded (an HTML report in a frame). Its own origin, by the
    ``sandbox`` policy: a report's scripts run, but they can neither reach this server nor load anything."""
    answer = get_artifact(run_id, path, r)
    answer.headers["content-disposition"] = answer.headers["content-disposition"].replace("attachment", "inline", 1)
    answer.headers["content-security-policy"] = PREVIEW_POLICY
    answer.headers["x-content-type-options"] = "nosniff"
    return answer
