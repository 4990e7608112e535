"""REST API of a model version's stored analysis (``mloop.analyze``), under ``/api/registry``: its JSON and its
self-contained HTML report, which the UI's analysis page reads and opens sandboxed.

Read-only: an analysis is made by ``mloop.analyze`` (or ``attach_analysis``) and stored with the version.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from mloop._util.openapi import error_responses
from mloop.server.api._schema import TextPath
from mloop.server.api.registry import IdPath, _registry

router = APIRouter(prefix="/registry", tags=["analysis"])

# The report's scripts (its inlined Plotly) run, but on an opaque origin: they reach neither this server nor
# anything else, even when the report is opened directly rather than in the page's frame.
_REPORT_POLICY = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
                  "style-src 'unsafe-inline'; img-src data:; font-src data:")


def _stored(request: Request, name: str, version: int, filename: str) -> bytes:
    from mloop.analysis.store import stored_analysis

    return stored_analysis(name, version, filename, _registry(request))


@router.get("/models/{name}/versions/{version}/analysis", responses=error_responses(404))
def analysis(name: TextPath, version: IdPath, request: Request) -> dict[str, Any]:
    """The analysis stored with the version: task, overall and per-slice metrics with counts and 95% intervals,
    calibration and confusion (classifiers), residuals by slice (regressors), fairness per sensitive feature."""
    from mloop.analysis import Analysis

    return Analysis.from_dict(json.loads(_stored(request, name, version, "analysis.json"))).to_dict()


@router.get("/models/{name}/versions/{version}/analysis/report", response_class=Response,
            responses={200: {"content": {"text/html": {}}}, **error_responses(404)})
def report(name: TextPath, version: IdPath, request: Request) -> Response:
    """The analysis's self-contained HTML report, shown inline under a sandbox policy."""
    return Response(_stored(request, name, version, "report.html"), media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": _REPORT_POLICY, "X-Content-Type-Options": "nosniff",
                             "Content-Disposition": f'inline; filename="{name}-v{version}-analysis.html"'})
