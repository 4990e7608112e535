"""REST API of hyperparameter studies, under ``/api/tuning``: studies, one study's trials, parameter importances.

Read-only: a study is run by ``mloop.tune`` or ``mloop tune``; the UI reads it here.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request

from mloop._util.openapi import error_responses
from mloop.auth.roles import Role
from mloop.server.api._schema import TextPath
from mloop.server.visibility import keep_visible, require_role, visible_runs

router = APIRouter(prefix="/tuning", tags=["tuning"])
_NO_RUN = "-"  # stands for a study's missing run, which no run id equals: it belongs to the default project


@router.get("/studies")
def studies(request: Request) -> list[dict[str, Any]]:
    """Every study: name, direction, metric, the study's run, trial counts by state, best value and trial."""
    from mloop.tuning import list_studies

    found = list_studies(request.app.state.settings)
    # a study belongs with its run's project; a study without a run belongs to the default project
    runs = visible_runs(request, [s["run_id"] or _NO_RUN for s in found])
    return [_finite(s) for s in keep_visible(found, lambda s: s["run_id"] or _NO_RUN, runs)]


# a study name may hold "/" (a key such as team/search): the names are paths, and this route comes first
@router.get("/studies/{name:path}/importances", responses=error_responses(404))
def importances(name: TextPath, request: Request) -> dict[str, float]:
    """How much each parameter explains the objective (Optuna's fANOVA); empty before two trials complete."""
    from mloop._util.optional import require

    found = _visible_study(request, name)
    done = [t for t in found.optuna.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(done) < 2:
        return {}
    optuna = require("optuna", extra="tune")
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(found.optuna).items()}
    except (ValueError, RuntimeError):  # e.g. every trial had the same params: nothing to explain
        return {}


@router.get("/studies/{name:path}", responses=error_responses(404))
def study(name: TextPath, request: Request) -> dict[str, Any]:
    """One study with its trials: number, state, value, run, start and end, params, intermediate values."""
    from mloop.tuning.study import RUN_ID, utc

    found = _visible_study(request, name)
    trials = [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
               "run_id": t.system_attrs.get(RUN_ID), "start": _iso(utc(t.datetime_start)),
               "end": _iso(utc(t.datetime_complete)),
               "params": t.params, "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())}}
              for t in found.optuna.get_trials(deepcopy=False)]
    return _finite({"name": found.name, "direction": found.direction, "metric": found.metric, "run_id": found.run_id,
                    "trials": trials})


def _visible_study(request: Request, name: str) -> Any:
    """The study ``name``, if the caller may see its run's project (a study is found by its name, which the
    auth layer cannot map to a project, so this read checks here), else 403."""
    from mloop.tuning import load_study

    found = load_study(name, request.app.state.settings)
    require_role(request, "run", found.run_id or _NO_RUN, Role.VIEWER, f"study '{name}'")
    return found


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
