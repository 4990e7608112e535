"""MLflow 3's logged-model endpoints (``/api/2.0/mlflow/logged-models``), as far as ``mlflow.<flavor>.log_model``
and ``mlflow.search_logged_models`` use them: create, get, finalize, delete, search, tags and params, and
``runs/outputs``, which links a run to the models it logged.

The records live in the artifact store (see ``_models_logged``); the files go through the artifact proxy.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from mloop.auth.roles import Role
from mloop.server.mlflow import _models_filter as _filter
from mloop.server.mlflow import _models_logged as logged
from mloop.server.mlflow._protocol import MlflowError, MlflowRoute
from mloop.server.visibility import experiments_for_search, projects_of, require_role
from mloop.store.blob import BlobStore

router = APIRouter(route_class=MlflowRoute, tags=["mlflow"], include_in_schema=False)  # see __init__
Text = Annotated[str, Field(max_length=8000)]
Short = Annotated[str, Field(max_length=500)]
MAX_RESULTS = 1000


class KeyValue(BaseModel):
    key: Short
    value: Text = ""


class CreateIn(BaseModel):
    experiment_id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]
    name: Short | None = None
    model_type: Short | None = None
    source_run_id: Annotated[str, Field(max_length=32, pattern=r"^([0-9a-f]{32})?$")] | None = None
    params: list[KeyValue] = Field(default_factory=list, max_length=logged.MAX_PARAMS)
    tags: list[KeyValue] = Field(default_factory=list, max_length=logged.MAX_TAGS)


class FinalizeIn(BaseModel):
    status: Annotated[str, Field(max_length=64)]


class TagsIn(BaseModel):
    tags: list[KeyValue] = Field(default_factory=list, max_length=logged.MAX_TAGS)


class ParamsIn(BaseModel):
    params: list[KeyValue] = Field(default_factory=list, max_length=logged.MAX_PARAMS)


class ModelOutput(BaseModel):
    model_id: Annotated[str, Field(max_length=64)]
    step: int = Field(default=0, ge=-(2**63), le=2**63 - 1)


class OutputsIn(BaseModel):
    run_id: Annotated[str, Field(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]
    models: list[ModelOutput] = Field(default_factory=list, max_length=1000)


class SearchIn(BaseModel):
    experiment_ids: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=1000)
    filter: Annotated[str, Field(max_length=10_000)] | None = None
    max_results: int | None = Field(default=None, ge=1, le=MAX_RESULTS)
    page_token: Annotated[str, Field(max_length=100)] | None = None


def blobs(request: Request) -> BlobStore:
    from mloop.server.api.tracking import repo

    return repo(request).blobs


def _actor(request: Request) -> str:
    return str(request.app.state.settings.user or "")


@router.post("/logged-models")
def create(body: CreateIn, request: Request) -> dict[str, Any]:
    if body.source_run_id:
        from mloop.server.api.tracking import repo

        repo(request).get_run(body.source_run_id)  # RESOURCE_DOES_NOT_EXIST for a run that is not there
    record = logged.create(blobs(request), body.experiment_id, body.name, body.source_run_id or None,
                           body.model_type, {t.key: t.value for t in body.tags},
                           {p.key: p.value for p in body.params}, _actor(request))
    return {"model": logged.to_mlflow(record)}


@router.get("/logged-models/{model_id}")
def get(model_id: str, request: Request, allow_deleted: bool = False) -> dict[str, Any]:
    return {"model": logged.to_mlflow(_allowed(request, model_id, Role.VIEWER, allow_deleted))}


def _allowed(request: Request, model_id: str, role: Role, allow_deleted: bool = True) -> dict[str, Any]:
    """The record of ``model_id`` if the caller holds ``role`` in its experiment's project (a logged model lives
    in the artifact store, where the auth layer does not look), else 403."""
    record = logged.get(blobs(request), model_id, allow_deleted)
    require_role(request, "experiment", str(record["experiment_id"]), role, f"logged model '{model_id}'")
    return record


@router.patch("/logged-models/{model_id}")
def finalize(model_id: str, body: FinalizeIn, request: Request) -> dict[str, Any]:
    status = body.status if body.status.startswith("LOGGED_MODEL_") else f"LOGGED_MODEL_{body.status}"
    if status not in logged.STATUSES[1:]:
        raise MlflowError(f"status: '{body.status}' is not a final status; expected one of {logged.STATUSES[1:]}.")
    _allowed(request, model_id, Role.EDITOR)
    return {"model": logged.to_mlflow(logged.change(blobs(request), model_id, status=status))}


def _change(request: Request, model_id: str, **changes: Any) -> dict[str, Any]:
    _allowed(request, model_id, Role.EDITOR)
    logged.change(blobs(request), model_id, **changes)
    return {}  # MLflow answers these with an empty message


@router.delete("/logged-models/{model_id}")
def delete(model_id: str, request: Request) -> dict[str, Any]:
    return _change(request, model_id, deleted=True)


@router.patch("/logged-models/{model_id}/tags")
def set_tags(model_id: str, body: TagsIn, request: Request) -> dict[str, Any]:
    return _change(request, model_id, tags={t.key: t.value for t in body.tags})


@router.delete("/logged-models/{model_id}/tags/{tag_key}")
def delete_tag(model_id: str, tag_key: Annotated[str, Path(max_length=500)], request: Request) -> dict[str, Any]:
    return _change(request, model_id, drop_tag=tag_key)


@router.post("/logged-models/{model_id}/params")
def log_params(model_id: str, body: ParamsIn, request: Request) -> dict[str, Any]:
    return _change(request, model_id, params={p.key: p.value for p in body.params})


@router.post("/runs/outputs")
def log_outputs(body: OutputsIn, request: Request) -> dict[str, Any]:
    """Record that the run produced these logged models (``log_model`` inside a run calls it)."""
    from mloop.server.api.tracking import repo

    repo(request).get_run(body.run_id)  # RESOURCE_DOES_NOT_EXIST for a run that is not there
    for output in body.models:
        record = logged.get(blobs(request), output.model_id)
        outputs = {**record.get("run_outputs", {}), body.run_id: output.step}
        logged.change(blobs(request), output.model_id, run_outputs=outputs)
    return {}


@router.post("/logged-models/search")
def search(body: SearchIn, request: Request) -> dict[str, Any]:
    matches = _filter.parse(body.filter, {"name", "source_run_id", "model_type", "status", "model_id"})
    scope = set(body.experiment_ids)
    visible = None if projects_of(request) is None else set(experiments_for_search(request, []))
    found = [r for r in logged.every(blobs(request))
             if (not scope or r["experiment_id"] in scope) and (visible is None or r["experiment_id"] in visible)
             and matches({**r, **{f"tags.{k}": v for k, v in r["tags"].items()}})]
    rows, token = _filter.page(found, body.page_token, body.max_results or 100)
    return {"models": [logged.to_mlflow(r) for r in rows], **({"next_page_token": token} if token else {})}
