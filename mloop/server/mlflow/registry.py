"""MLflow's model registry API (``registered-models/*``, ``model-versions/*``) on mloop's registry.

A registered model is an mloop registered model, a version an mloop version (MLflow's version strings are mloop's
numbers), aliases are aliases. MLflow's stages map onto mloop's environments: ``Staging`` and ``Production``
are the environments ``staging`` and ``production`` (``mloop env create``), so a transition is a deployment
with mloop's approvals and audit; ``Archived`` and ``None`` take a version out of those environments' view only
in name, since mloop keeps no archive stage. A version's files are reached through the artifact proxy
(``get-download-uri``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mloop.errors import NotFoundError
from mloop.registry import RegistryClient, registry_for
from mloop.registry.entities import ModelVersion
from mloop.server.mlflow import _models_filter as filters
from mloop.server.mlflow import _models_shapes as shapes
from mloop.server.mlflow._protocol import MlflowError, MlflowRoute
from mloop.server.visibility import guard_rollout_tags, tagged_visible

router = APIRouter(route_class=MlflowRoute, tags=["mlflow"], include_in_schema=False)  # see __init__
Name = Annotated[str, Field(min_length=1, max_length=256)]
NameQuery = Annotated[str, Query(min_length=1, max_length=256)]
VersionText = Annotated[str, Field(min_length=1, max_length=12)]
Text = Annotated[str, Field(max_length=65_536)]
Key = Annotated[str, Field(min_length=1, max_length=250)]
MAX_RESULTS = 10_000


class KeyValue(BaseModel):
    key: Key
    value: Text = ""


class ModelIn(BaseModel):
    name: Name
    description: Text = ""
    tags: list[KeyValue] = Field(default_factory=list, max_length=1000)


class NameIn(BaseModel):
    name: Name


class UpdateModelIn(NameIn):
    description: Text | None = None


class RenameIn(NameIn):
    new_name: Name


class TagIn(NameIn):
    key: Key
    value: Text = ""


class TagKeyIn(NameIn):
    key: Key


class AliasIn(NameIn):
    alias: Annotated[str, Field(min_length=1, max_length=256)]
    version: VersionText | None = None


class LatestIn(NameIn):
    stages: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=10)


class VersionIn(NameIn):
    version: VersionText


class UpdateVersionIn(VersionIn):
    description: Text | None = None


class VersionTagIn(VersionIn):
    key: Key
    value: Text = ""


class VersionTagKeyIn(VersionIn):
    key: Key


class StageIn(VersionIn):
    stage: Annotated[str, Field(max_length=32)]
    archive_existing_versions: bool = False


class CreateVersionIn(NameIn):
    source: Annotated[str, Field(min_length=1, max_length=4096)]
    run_id: Annotated[str, Field(max_length=32)] | None = None
    tags: list[KeyValue] = Field(default_factory=list, max_length=1000)
    run_link: Annotated[str, Field(max_length=4096)] | None = None
    description: Text = ""
    model_id: Annotated[str, Field(max_length=64)] | None = None


@dataclass
class SearchArgs:
    """The query of MLflow's registry searches (a dependency: ``args: Annotated[SearchArgs, Depends()]``)."""

    filter: Annotated[str, Query(max_length=10_000)] = ""
    max_results: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 100
    order_by: Annotated[list[str] | None, Query(max_length=10)] = None
    page_token: Annotated[str, Query(max_length=200)] = ""


Search = Annotated[SearchArgs, Depends()]


def _registry(request: Request) -> RegistryClient:
    return registry_for(request.app.state.settings)


def number(version: str) -> int:
    """MLflow's version string as mloop's version number."""
    if not version.isdigit() or not 0 < int(version) < 2**31:
        raise MlflowError(f"version: '{version}' is not a version number; expected a positive whole number.")
    return int(version)


def _stage(registry: RegistryClient, version: ModelVersion) -> str:
    """The MLflow stage of ``version``: the stage environment it is deployed to, else 'None'."""
    for stage, env in STAGES:
        try:
            if registry.environments.current(version.name, env) == version.version:
                return stage
        except NotFoundError:  # that environment does not exist here
            continue
    return "None"


STAGES = tuple(shapes.STAGE_ENVIRONMENTS.items())


def refuse_if_deployed(registry: RegistryClient, name: str, version: int | None = None) -> None:
    """INVALID_STATE when the model (or one version) is deployed to an environment: MLflow's delete also drops
    aliases, and that must not happen before a delete that mloop's deployment guard then refuses."""
    from sqlalchemy import select

    from mloop.registry import _tables as t

    query = select(t.deployments.c.env, t.deployments.c.version).where(t.deployments.c.name == name)
    if version is not None:
        query = query.where(t.deployments.c.version == version)
    with registry.db.read() as conn:
        found = [f"{r.env} (version {r.version})" for r in conn.execute(query)]
    if found:
        raise MlflowError(f"'{name}' is deployed in {found}; deploy another version or remove the deployment "
                          "before deleting.", code="INVALID_STATE", status=400)


# ---------------------------------------------------------------- registered models
@router.post("/registered-models/create")
def create_model(body: ModelIn, request: Request) -> dict[str, Any]:
    model = _registry(request).create_model(body.name, body.description, {t.key: t.value for t in body.tags})
    return {"registered_model": shapes.model_out(model)}


def _latest(registry: RegistryClient, name: str) -> list[ModelVersion]:
    versions = registry.list_versions(name)
    return versions[-1:]


@router.get("/registered-models/get")
def get_model(name: NameQuery, request: Request) -> dict[str, Any]:
    registry = _registry(request)
    return {"registered_model": shapes.model_out(registry.get_model(name), _latest(registry, name))}


@router.patch("/registered-models/update")
def update_model(body: UpdateModelIn, request: Request) -> dict[str, Any]:
    return {"registered_model": shapes.model_out(_registry(request).update_model(body.name, body.description))}


@router.post("/registered-models/rename")
def rename_model(body: RenameIn, request: Request) -> dict[str, Any]:
    _registry(request).get_model(body.name)  # a missing model is RESOURCE_DOES_NOT_EXIST, as in MLflow
    raise MlflowError(f"Renaming a registered model is not supported by mloop ('{body.name}' -> "
                      f"'{body.new_name}'): its versions, aliases, deployments and audit trail are keyed by name. "
                      "Register the versions under the new name instead.", code="INVALID_STATE", status=400)


@router.delete("/registered-models/delete")
def delete_model(body: NameIn, request: Request) -> dict[str, Any]:
    registry = _registry(request)
    model = registry.get_model(body.name)
    refuse_if_deployed(registry, body.name)
    for alias in model.aliases:  # MLflow drops the aliases with the model
        registry.delete_alias(body.name, alias)
    registry.delete_model(body.name)
    return {}


@router.get("/registered-models/search")
def search_models(request: Request, args: Search) -> dict[str, Any]:
    registry = _registry(request)
    matches = filters.parse(args.filter, {"name"})
    models = [m for m in registry.list_models() if matches(shapes.model_row(m)) and tagged_visible(request, m.tags)]
    models = _ordered(models, args.order_by, {"name": "name", "creation_timestamp": "created",
                                              "last_updated_timestamp": "updated", "timestamp": "updated"})
    rows, token = filters.page(models, args.page_token, args.max_results)
    latest = {v.name: v for v in registry.list_versions()}  # oldest first: the last one of each name wins
    return {"registered_models": [shapes.model_out(m, [latest[m.name]] if m.name in latest else None)
                                  for m in rows], **({"next_page_token": token} if token else {})}


def _ordered(items: list[Any], order_by: list[str] | None, fields: dict[str, str]) -> list[Any]:
    """``items`` sorted by MLflow's ``order_by`` clauses (``name ASC``, ``version_number DESC``...)."""
    for clause in reversed(order_by or []):
        parts = clause.split()
        field = parts[0].removeprefix("attributes.") if parts else ""
        if field not in fields or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise MlflowError(f"order_by: '{clause[:100]}' is not supported; expected one of {sorted(fields)} "
                              "with ASC or DESC.")
        items = sorted(items, key=lambda item: getattr(item, fields[field]),
                       reverse=len(parts) == 2 and parts[1].upper() == "DESC")
    return items


@router.api_route("/registered-models/get-latest-versions", methods=["GET", "POST"])
async def latest_versions(request: Request) -> dict[str, Any]:
    data = dict(request.query_params) if request.method == "GET" else await request.json()
    body = LatestIn.model_validate(data)
    registry = _registry(request)
    versions = await run_in_threadpool(registry.list_versions, body.name)
    newest: dict[str, ModelVersion] = {}
    for version in versions:
        newest[await run_in_threadpool(_stage, registry, version)] = version
    wanted = body.stages or list(newest)
    return {"model_versions": [shapes.version_out(v, s) for s, v in newest.items() if s in wanted]}


@router.post("/registered-models/set-tag")
def set_model_tag(body: TagIn, request: Request) -> dict[str, Any]:
    guard_rollout_tags(request, body.name, [body.key])
    _registry(request).update_model(body.name, tags={body.key: body.value})
    return {}


@router.delete("/registered-models/delete-tag")
def delete_model_tag(body: TagKeyIn, request: Request) -> dict[str, Any]:
    guard_rollout_tags(request, body.name, [body.key])
    _registry(request).delete_tag(body.name, body.key)
    return {}


@router.post("/registered-models/alias")
def set_alias(body: AliasIn, request: Request) -> dict[str, Any]:
    if body.version is None:
        raise MlflowError("version: missing; setting an alias needs the version it points to.")
    _registry(request).set_alias(body.name, body.alias, number(body.version))
    return {}


@router.delete("/registered-models/alias")
def delete_alias(request: Request, body: AliasIn | None = None, name: str = "", alias: str = "") -> dict[str, Any]:
    target = body or AliasIn(name=name, alias=alias)
    _registry(request).delete_alias(target.name, target.alias)
    return {}


@router.get("/registered-models/alias")
def get_by_alias(name: NameQuery, alias: Annotated[str, Query(min_length=1, max_length=256)],
                 request: Request) -> dict[str, Any]:
    registry = _registry(request)
    version = registry.get_alias(name, alias)
    return {"model_version": shapes.version_out(version, _stage(registry, version))}
