"""MLflow's ``model-versions/*`` endpoints on mloop's registry (the registered-model half is ``registry``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from mloop.registry.entities import Deployment
from mloop.server.mlflow import _models_filter as filters
from mloop.server.mlflow import _models_shapes as shapes
from mloop.server.mlflow import _models_sources as sources
from mloop.server.mlflow._artifacts_paths import storage_location
from mloop.server.mlflow._protocol import MlflowError, MlflowRoute
from mloop.server.mlflow.registry import (
    CreateVersionIn,
    NameQuery,
    Search,
    StageIn,
    UpdateVersionIn,
    VersionIn,
    VersionTagIn,
    VersionTagKeyIn,
    _ordered,
    _registry,
    _stage,
    number,
    refuse_if_deployed,
)
from mloop.server.visibility import keep_visible, visible_models

router = APIRouter(route_class=MlflowRoute, tags=["mlflow"], include_in_schema=False)  # see __init__
VersionQuery = Annotated[str, Query(min_length=1, max_length=12)]


@router.post("/model-versions/create")
async def create_version(body: CreateVersionIn, request: Request) -> dict[str, Any]:
    registry = _registry(request)
    await run_in_threadpool(registry.get_model, body.name)  # MLflow needs the model to exist first
    version = await run_in_threadpool(
        lambda: sources.register(registry, body.name, body.source, model_id=body.model_id or None,
                                 run_id=body.run_id or None, description=body.description,
                                 tags={t.key: t.value for t in body.tags}))
    return {"model_version": shapes.version_out(version)}


@router.get("/model-versions/get")
def get_version(name: NameQuery, version: VersionQuery, request: Request) -> dict[str, Any]:
    registry = _registry(request)
    found = registry.get_version(name, number(version))
    return {"model_version": shapes.version_out(found, _stage(registry, found))}


@router.patch("/model-versions/update")
def update_version(body: UpdateVersionIn, request: Request) -> dict[str, Any]:
    updated = _registry(request).update_version(body.name, number(body.version), body.description)
    return {"model_version": shapes.version_out(updated)}


@router.delete("/model-versions/delete")
def delete_version(body: VersionIn, request: Request) -> dict[str, Any]:
    registry = _registry(request)
    found = registry.get_version(body.name, number(body.version))
    refuse_if_deployed(registry, body.name, found.version)
    for alias in found.aliases:  # MLflow drops a deleted version's aliases; a deployment still guards it
        registry.delete_alias(body.name, alias)
    registry.delete_version(body.name, found.version)
    return {}


@router.get("/model-versions/search")
def search_versions(request: Request, args: Search) -> dict[str, Any]:
    registry = _registry(request)
    matches = filters.parse(args.filter, {"name", "version_number", "run_id", "source_path", "source", "user_id"})
    found = [v for v in reversed(registry.list_versions()) if matches(shapes.version_row(v))]
    found = keep_visible(found, lambda v: v.name, visible_models(request, {v.name for v in found}))
    found = _ordered(found, args.order_by, {"name": "name", "version_number": "version",
                                            "creation_timestamp": "created", "last_updated_timestamp": "created",
                                            "timestamp": "created"})
    rows, token = filters.page(found, args.page_token, args.max_results)
    return {"model_versions": [shapes.version_out(v, _stage(registry, v)) for v in rows],
            **({"next_page_token": token} if token else {})}


@router.get("/model-versions/get-download-uri")
def download_uri(name: NameQuery, version: VersionQuery, request: Request) -> dict[str, Any]:
    found = _registry(request).get_version(name, number(version))
    return {"artifact_uri": storage_location(found.storage)}


@router.post("/model-versions/set-tag")
def set_version_tag(body: VersionTagIn, request: Request) -> dict[str, Any]:
    _registry(request).update_version(body.name, number(body.version), tags={body.key: body.value})
    return {}


@router.delete("/model-versions/delete-tag")
def delete_version_tag(body: VersionTagKeyIn, request: Request) -> dict[str, Any]:
    _registry(request).delete_tag(body.name, body.key, number(body.version))
    return {}


@router.post("/model-versions/transition-stage")
def transition_stage(body: StageIn, request: Request) -> dict[str, Any]:
    registry = _registry(request)
    version = number(body.version)
    stage = body.stage.capitalize()
    env = shapes.STAGE_ENVIRONMENTS.get(stage)
    if env is None:
        raise MlflowError(f"stage: mloop maps MLflow's stages onto its environments and has no '{body.stage}' "
                          f"stage; expected one of {sorted(shapes.STAGE_ENVIRONMENTS)} (the environments "
                          f"{sorted(shapes.STAGE_ENVIRONMENTS.values())}), or use aliases.")
    change = registry.environments.deploy(body.name, version, env, reason="mlflow transition-stage")
    if not isinstance(change, Deployment):
        raise MlflowError(f"Version {version} of '{body.name}' waits for approval to enter '{env}' (request "
                          f"{change.id}); it moves once approved.", code="INVALID_STATE", status=400)
    found = registry.get_version(body.name, version)
    return {"model_version": shapes.version_out(found, stage)}
