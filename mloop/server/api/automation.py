"""REST API of automation under ``/api/automation``: rules, firings, a model's timeline, the manual trigger
(which records the firing; the runtime, ``mloop scheduler`` or ``mloop automation run``, runs it), and pausing
or resuming a rule (a maintainer's: it decides whether automation may act on the model at all)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mloop._util.openapi import error_responses
from mloop.config import Settings
from mloop.server.api._schema import TextPath
from mloop.server.visibility import keep_visible, sql_model_visible, visible_models

router = APIRouter(prefix="/automation", tags=["automation"])
Label = Annotated[str, Field(max_length=256)]


class FireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: dict[str, Any] = Field(default={}, max_length=100)
    request_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


@router.get("/rules")
def list_rules(request: Request) -> list[dict[str, Any]]:
    """Rules of the models the caller may see."""
    from mloop.automation import list_rules

    found = list_rules(_settings(request))
    return keep_visible(found, lambda r: r["model"], visible_models(request, [r["model"] for r in found]))


@router.get("/firings")
def list_firings(request: Request, rule: Label | None = None, model: Label | None = None,
                 firing: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    """Firings, newest first, of the models the caller may see (filtered in the query: ``limit`` holds)."""
    from mloop.automation import _tables as automation_tables
    from mloop.automation import firings

    visible = sql_model_visible(request, automation_tables.firings.c.model)
    return firings(rule=rule, model=model, firing=firing, limit=limit, settings=_settings(request), where=visible)


@router.get("/models/{model}/timeline")
def model_timeline(model: TextPath, request: Request) -> list[dict[str, Any]]:
    from mloop.automation import timeline

    return timeline(model, settings=_settings(request))


@router.post("/rules/{name}/fire", status_code=202, responses=error_responses(404, 422))
async def fire(name: TextPath, body: FireIn, request: Request) -> dict[str, Any]:
    from mloop.automation import fire_manual

    return await run_in_threadpool(fire_manual, name, body.payload, request_id=body.request_id, run=False,
                                   settings=_settings(request))


def _set_paused(name: str, paused: bool, settings: Settings) -> dict[str, Any]:
    from mloop.automation import list_rules, set_paused

    set_paused(name, paused, settings)
    return next(r for r in list_rules(settings) if r["name"] == name)


@router.post("/rules/{name}/pause", responses=error_responses(404))
async def pause(name: TextPath, request: Request) -> dict[str, Any]:
    """Pause the rule: its trigger is no longer observed and nothing fires it (a firing under way finishes)."""
    return await run_in_threadpool(_set_paused, name, True, _settings(request))


@router.post("/rules/{name}/resume", responses=error_responses(404))
async def resume(name: TextPath, request: Request) -> dict[str, Any]:
    """Resume a paused rule."""
    return await run_in_threadpool(_set_paused, name, False, _settings(request))
