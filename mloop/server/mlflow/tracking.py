"""MLflow's tracking API (experiments, runs, params, metrics, tags, datasets, search) on mloop's tracking store.

Every route is a translation: MLflow's request to mloop's repository call, mloop's answer to MLflow's JSON. A run
logged with ``mlflow.log_metric`` is an mloop run that ``mloop runs`` and ``mloop.search_runs`` show alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from mloop._util.names import check_key
from mloop.errors import ConflictError
from mloop.server.api.tracking import repo
from mloop.server.mlflow import _runs, _search
from mloop.server.mlflow import _runs_bodies as b
from mloop.server.mlflow._protocol import MlflowError, MlflowRoute
from mloop.server.mlflow._runs_inputs import to_dataset
from mloop.server.visibility import NO_EXPERIMENT, experiments_for_search, tagged_visible
from mloop.tracking._sql import SqlTrackingRepository
from mloop.tracking._wire import float_in, float_out

# Not in mloop's OpenAPI document: MLflow's service.proto documents this protocol, whose answers (400 for bad
# input, protobuf JSON's lenient numbers) are MLflow's and not those mloop's document and its fuzzing promise.
router = APIRouter(route_class=MlflowRoute, tags=["mlflow"], include_in_schema=False)
Repo = Annotated[SqlTrackingRepository, Depends(repo)]
IdQuery = Annotated[str | None, Query(max_length=64)]
_RESERVED = {"mlflow.runName", "mlflow.parentRunId"}  # kept in mloop's run columns, shown again as tags


def page_key(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "mlflow_page_key", None) is None:
        state.mlflow_page_key = _search.token_key(state.settings.home)
    return state.mlflow_page_key  # type: ignore[no-any-return]


PageKey = Annotated[bytes, Depends(page_key)]


def _json(content: dict[str, Any]) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


_EMPTY = JSONResponse({})


# ---------------------------------------------------------------- experiments
@router.post("/experiments/create")
def create_experiment(body: b.CreateExperimentIn, r: Repo) -> Response:
    tags = {check_key(t.key, "tags.key"): t.value for t in body.tags}
    return _json({"experiment_id": r.create_experiment(body.name, tags).experiment_id})


@router.get("/experiments/get")
def get_experiment(r: Repo, experiment_id: IdQuery = None) -> Response:
    exp = r.get_experiment(_runs.resolve_experiment(r, _required(experiment_id, "experiment_id")))
    return _json({"experiment": _runs.experiment_json(exp)})


@router.get("/experiments/get-by-name")
def get_experiment_by_name(r: Repo, experiment_name: Annotated[str | None, Query(max_length=256)] = None) -> Response:
    found = r.get_experiment_by_name(_required(experiment_name, "experiment_name"))
    if found is None:
        raise MlflowError(f"Could not find experiment with name '{experiment_name}'", "RESOURCE_DOES_NOT_EXIST", 404,
                          "experiment_name")
    return _json({"experiment": _runs.experiment_json(found)})


@router.post("/experiments/search")
def search_experiments(body: b.SearchExperimentsIn, r: Repo, key: PageKey, request: Request) -> Response:
    return _json(_search.search_experiments(
        r, key, filter=body.filter, view=_search.view_type(body.view_type), order_by=body.order_by,
        max_results=_search.check_max_results(body.max_results, 1000), page_token=body.page_token,
        visible=lambda e: tagged_visible(request, e.tags)))


@router.post("/experiments/update")
def update_experiment(body: b.UpdateExperimentIn, r: Repo) -> Response:
    r.rename_experiment(_runs.resolve_experiment(r, body.experiment_id), body.new_name)
    return _EMPTY


@router.post("/experiments/delete")
def delete_experiment(body: b.ExperimentRef, r: Repo) -> Response:
    r.delete_experiment(_runs.resolve_experiment(r, body.experiment_id))
    return _EMPTY


@router.post("/experiments/restore")
def restore_experiment(body: b.ExperimentRef, r: Repo) -> Response:
    r.restore_experiment(_runs.resolve_experiment(r, body.experiment_id))
    return _EMPTY


@router.post("/experiments/set-experiment-tag")
def set_experiment_tag(body: b.ExperimentTagIn, r: Repo) -> Response:
    key = check_key(body.key, "key")
    _runs.set_experiment_tag(r, _runs.resolve_experiment(r, body.experiment_id), key, body.value)
    return _EMPTY


@router.post("/experiments/delete-experiment-tag")
def delete_experiment_tag(body: b.ExperimentTagIn, r: Repo) -> Response:
    _runs.delete_experiment_tag(r, _runs.resolve_experiment(r, body.experiment_id), body.key)
    return _EMPTY


# ---------------------------------------------------------------- runs
@router.post("/runs/create")
def create_run(body: b.CreateRunIn, r: Repo) -> Response:
    tags = {check_key(t.key, "tags.key"): t.value for t in body.tags}
    name = body.run_name or tags.get("mlflow.runName") or None
    parent = tags.get("mlflow.parentRunId") or None
    user = body.user_id or tags.get("mlflow.user") or "unknown"
    experiment_id = _runs.resolve_experiment(r, body.experiment_id, create=True)
    run = r.create_run(experiment_id, name, user, {k: v for k, v in tags.items() if k not in _RESERVED},
                       parent, "")
    _runs.keep_alive(r, run.run_id, body.start_time)
    return _json({"run": _one_run(r, run.run_id)})


@router.get("/runs/get")
def get_run(r: Repo, run_id: IdQuery = None, run_uuid: IdQuery = None) -> Response:
    return _json({"run": _one_run(r, b.RunRef(run_id=run_id, run_uuid=run_uuid).run, with_inputs=True)})


@router.post("/runs/update")
def update_run(body: b.UpdateRunIn, r: Repo) -> Response:
    run_id = body.run
    if body.run_name:
        r.update_run(run_id, name=body.run_name)
    if body.status:
        _runs.set_status(r, run_id, body.status.upper(), body.end_time)
    with r.db.read() as conn:
        return _json({"run_info": _runs.run_info(_runs.run_row(conn, run_id))})


@router.post("/runs/delete")
def delete_run(body: b.RunRef, r: Repo) -> Response:
    r.delete_run(body.run)
    return _EMPTY


@router.post("/runs/restore")
def restore_run(body: b.RunRef, r: Repo) -> Response:
    r.restore_run(body.run)
    return _EMPTY


@router.post("/runs/search")
def search_runs(body: b.SearchRunsIn, r: Repo, key: PageKey, request: Request) -> Response:
    # scoped to the experiments the caller may see, inside the search's query (pages stay full)
    experiments = experiments_for_search(request, [_runs.resolve_experiment(r, e) for e in body.experiment_ids])
    if experiments == [NO_EXPERIMENT]:
        return _json({"runs": []})
    return _json(_search.search_runs(
        r, key, experiment_ids=experiments, filter=body.filter,
        run_view_type=_search.view_type(body.run_view_type), order_by=body.order_by,
        max_results=_search.check_max_results(body.max_results, 1000), page_token=body.page_token))


def _one_run(r: SqlTrackingRepository, run_id: str, with_inputs: bool = False) -> dict[str, Any]:
    with r.db.read() as conn:
        return _runs.runs_json(conn, [_runs.run_row(conn, run_id)], with_inputs)[0]


# ---------------------------------------------------------------- tags, params, metrics, inputs
@router.post("/runs/set-tag")
def set_tag(body: b.TagIn, r: Repo) -> Response:
    _log(r, body.run, tags=[body])
    return _EMPTY


@router.post("/runs/delete-tag")
def delete_tag(body: b.DeleteTagIn, r: Repo) -> Response:
    _runs.delete_run_tag(r, body.run, body.key)
    return _EMPTY


@router.post("/runs/log-metric")
def log_metric(body: b.LogMetricIn, r: Repo) -> Response:
    _log(r, body.run, metrics=[body])
    return _EMPTY


@router.post("/runs/log-parameter")
def log_param(body: b.LogParamIn, r: Repo) -> Response:
    _log(r, body.run, params=[body])
    return _EMPTY


@router.post("/runs/log-batch")
def log_batch(body: b.LogBatchIn, r: Repo) -> Response:
    body.check_total()
    _log(r, body.run, body.metrics, body.params, body.tags)
    return _EMPTY


def _log(r: SqlTrackingRepository, run_id: str, metrics: Sequence[b.MetricIn] = (),
         params: Sequence[b.ParamIn] = (), tags: Sequence[b.Tag] = ()) -> None:
    """Params, then tags, then metrics, as MLflow's server stores a batch; a finished run takes them too, as on
    MLflow's server (autolog logs a model's post-training scores to the run its fit ended)."""
    if params:
        values = {check_key(p.key, "params.key"): p.value for p in params}
        try:
            r.log_params(run_id, values, ended_ok=True)
        except ConflictError as exc:  # MLflow calls a changed param an invalid value
            if not (exc.field or "").startswith("params."):
                raise
            raise MlflowError(exc.message, "INVALID_PARAMETER_VALUE", 400, exc.field) from exc
    values = {check_key(t.key, "tags.key"): t.value for t in tags}
    if "mlflow.runName" in values:  # MLflow renames a run by this tag; mloop keeps the name in the run itself
        r.update_run(run_id, name=values.pop("mlflow.runName"))
    if values:
        r.set_tags(run_id, values)
    if metrics:
        for key in {m.key for m in metrics}:
            check_key(key, "metrics.key")
        r.log_metrics([(run_id, m.key, float_in(_nonfinite(m.value)), m.step, m.timestamp) for m in metrics],
                      ended_ok=True)


def _nonfinite(value: float | str) -> float | str:
    return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(value, value) if isinstance(value, str) else value


@router.post("/runs/log-inputs")
def log_inputs(body: b.LogInputsIn, r: Repo) -> Response:
    run_id = body.run
    with r.db.read() as conn:
        _runs.run_row(conn, run_id)
    for given in body.datasets:
        dataset, context = to_dataset(given)
        r.log_input(run_id, dataset, context)
    return _EMPTY


@router.get("/metrics/get-history")
def metric_history(r: Repo, key: PageKey, run_id: IdQuery = None, run_uuid: IdQuery = None,
                   metric_key: Annotated[str | None, Query(max_length=250)] = None,
                   max_results: int | None = None, page_token: Annotated[str | None, Query(max_length=1000)] = None
                   ) -> Response:
    run = b.RunRef(run_id=run_id, run_uuid=run_uuid).run
    metric = _required(metric_key, "metric_key")
    points = r.metric_history(run, metric)
    limit = _search.check_max_results(max_results, 25_000) if max_results is not None else len(points) or 1
    scope = _search.search_scope(r=run, k=metric, n=limit)
    offset = _search.read_token(key, scope, page_token)
    answer: dict[str, Any] = {"metrics": [
        {"key": metric, "value": float_out(p.value), "timestamp": p.timestamp, "step": p.step}
        for p in points[offset:offset + limit]]}
    if len(points) > offset + limit:
        answer["next_page_token"] = _search.issue_token(key, scope, offset + limit)
    return _json(answer)


def _required(value: str | None, field: str) -> str:
    if not value:
        raise MlflowError(f"Missing value for required parameter '{field}'.", "INVALID_PARAMETER_VALUE", 400, field)
    return value

