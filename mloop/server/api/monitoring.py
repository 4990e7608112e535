"""REST API of monitoring, under ``/api/monitors`` and ``/api/alerts``: monitors, their series, alert rules,
states, history and silences. Series come back column-wise (one list per field), the shape charts read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from mloop._util.openapi import error_responses
from mloop.config import Settings
from mloop.server.api._schema import Name, TextPath
from mloop.server.api.features import IsoTime
from mloop.server.visibility import keep_visible, visible_alert_rule_names, visible_models

router = APIRouter(tags=["monitoring"])
Label = Annotated[str, Field(max_length=256)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MonitorIn(_Body):
    name: Name = Field(min_length=1, max_length=128)
    model: Name = Field(min_length=1, max_length=256)
    window: str | StrictInt = "1h"
    task: str | None = None
    slices: list[Label] = Field(default=[], max_length=50)
    segments: dict[Label, Annotated[str, Field(max_length=2000)]] = Field(default={}, max_length=50)
    lateness: str | StrictInt = "2m"
    start: IsoTime | None = None


class RulesIn(_Body):
    rules: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class SilenceIn(_Body):
    rule: Label
    until: IsoTime
    key: Annotated[str, Field(max_length=512)] = ""
    reason: Annotated[str, Field(max_length=2000)] = ""


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


@router.get("/monitors")
def list_monitors(request: Request) -> list[dict[str, Any]]:
    """Monitors of the models the caller may see (monitors are few: not paged)."""
    from mloop.monitoring import list_monitors

    found = list_monitors(_settings(request))
    return keep_visible(found, lambda m: m["model"], visible_models(request, [m["model"] for m in found]))


@router.post("/monitors", status_code=201, responses=error_responses(422))
def create_monitor(body: MonitorIn, request: Request) -> dict[str, Any]:
    from mloop.monitoring import create_monitor

    monitor = create_monitor(body.name, body.model, window=body.window, task=body.task, slices=body.slices,
                             lateness=body.lateness, start=body.start, segments=body.segments,
                             settings=_settings(request))
    return {"name": monitor.name, "model": monitor.model, "window_seconds": monitor.window_seconds,
            "task": monitor.task, "slices": list(monitor.slices), "segments": dict(monitor.segments)}


@router.post("/monitors/{name}/run", responses=error_responses(404, 409, 422))
async def run_monitor(name: TextPath, request: Request, window_start: datetime | None = None) -> dict[str, Any]:
    """Run the monitor; with ``window_start``, compute (again) only the window beginning then."""
    from mloop.monitoring import run_monitor

    report = await run_in_threadpool(run_monitor, name, window_start=window_start, settings=_settings(request))
    return {"monitor": name, "windows": report.windows, "recomputed": report.recomputed, "rows": report.rows,
            "watermark": report.watermark, "alerts": [e.to_dict() for e in report.alerts]}


@router.get("/monitors/{name}/series", responses=error_responses(404))
def monitor_series(name: TextPath, request: Request, metric: Annotated[list[Label] | None, Query()] = None,
                   column: Label | None = None, version: Label | None = None, role: Label | None = None,
                   start: datetime | None = None, end: datetime | None = None,
                   every: Annotated[Literal["1h", "1d"] | None, Query()] = None) -> dict[str, list[Any]]:
    """The monitor's figures, one list per field; ``every=1h|1d`` rolls windows up in SQL (dashboards)."""
    from mloop.monitoring import series
    from mloop.monitoring.rollup import rolled_up_series

    found = (rolled_up_series(name, every, metric, column=column, version=version, role=role, start=start, end=end,
                              settings=_settings(request)) if every else
             series(name, metric, column=column, version=version, role=role, start=start, end=end,
                    settings=_settings(request)))
    found["start"] = found["start"].dt.as_unit("ms").astype("int64")
    values = found["value"].astype(object).where(found["value"].notna(), None)
    return {**{c: found[c].tolist() for c in ("start", "version", "role", "metric", "column", "slice")},
            "value": values.tolist()}


@router.get("/monitors/{name}/profile", responses=error_responses(404))
def window_profile(name: TextPath, start: datetime, version: Label, request: Request,
                   role: Label = "primary") -> dict[str, Any]:
    from mloop.monitoring import window_profile

    return window_profile(name, start, version, role, settings=_settings(request)).to_dict()


@router.get("/monitors/{name}/reference", responses=error_responses(404))
def training_profile(name: TextPath, version: Label, request: Request) -> dict[str, Any]:
    """The training profile a window of ``version`` is compared with (404 when the version has none)."""
    from mloop.errors import NotFoundError
    from mloop.monitoring import get_monitor
    from mloop.monitoring._runner import training_reference

    settings = _settings(request)
    monitor = get_monitor(name, settings)
    reference, _ = training_reference(monitor.model, version, settings)
    if reference is None:
        raise NotFoundError(f"Version {version} of {monitor.model!r} has no training profile.", field="version")
    return reference.to_dict()


@router.put("/alerts/rules", responses=error_responses(404, 422))
def apply_rules(body: RulesIn, request: Request) -> dict[str, list[str]]:
    from mloop.monitoring.alerts import apply_rules, load_rules

    return {"rules": apply_rules(load_rules(body.rules), _settings(request))}


@router.get("/alerts")
def list_alerts(request: Request, firing: bool = False) -> list[dict[str, Any]]:
    from mloop.monitoring.alerts import list_alerts

    found = _visible_rules(request, list_alerts(firing_only=firing, settings=_settings(request)))
    found["since"] = found["since"].astype(str)
    return found.astype(object).where(found.notna(), None).to_dict("records")  # type: ignore[no-any-return]


@router.get("/alerts/history")
def alert_history(request: Request, rule: Label | None = None) -> list[dict[str, Any]]:
    from mloop.monitoring.alerts import alert_history_frame

    found = _visible_rules(request, alert_history_frame(rule, settings=_settings(request)))
    found["window"] = found["window"].astype(str)
    return found.astype(object).where(found.notna(), None).to_dict("records")  # type: ignore[no-any-return]


def _visible_rules(request: Request, frame: Any) -> Any:
    """The rows of ``frame`` (a ``rule`` column) whose alert rule watches a model the caller may see."""
    rules = visible_alert_rule_names(request)
    return frame if rules is None else frame[frame["rule"].isin(sorted(rules))].reset_index(drop=True)


@router.post("/alerts/silences", status_code=201, responses=error_responses(422))
def add_silence(body: SilenceIn, request: Request) -> dict[str, str]:
    from mloop.monitoring.alerts import silence

    return {"id": silence(body.rule, until=body.until, key=body.key, reason=body.reason,
                          settings=_settings(request))}
