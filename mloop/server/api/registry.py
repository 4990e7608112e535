"""REST API of the model registry, under ``/api/registry``: thin handlers over RegistryClient."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from mloop._util.openapi import error_responses
from mloop.errors import InvalidInputError
from mloop.registry import RegistryClient, registry_for
from mloop.registry.webhooks import EVENTS, MIN_SECRET, URL_PATTERN
from mloop.server.api._schema import (
    AliasPath,
    AuditAction,
    Description,
    DigestPath,
    ModelUriQuery,
    Name,
    OptionalTextQuery,
    PlainPath,
    RunsUri,
    Tags,
    TextPath,
    documented,
    integer,
)
from mloop.server.auth import identity_of
from mloop.server.visibility import guard_rollout_tags, keep_visible, sql_model_visible, tagged_visible, visible_models

_MAX_ID = 2**31 - 1
IdPath = Annotated[int, Path(ge=1, le=_MAX_ID)]
IdField = integer(1, _MAX_ID)  # neither "5" nor true is a version
Limit = Annotated[int, Query(ge=1, le=10_000)]

router = APIRouter(prefix="/registry", tags=["registry"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelIn(_Body):
    name: Name
    description: Description = ""
    tags: Tags = Field(default_factory=dict)


class ModelPatch(_Body):
    description: Description | None = None
    tags: Tags | None = None


class VersionIn(_Body):
    source: RunsUri
    description: Description = ""
    tags: Tags = Field(default_factory=dict)
    create: StrictBool = True  # false: an unknown model name is an error instead of a new model


class AliasIn(_Body):
    version: IdField
    expected: IdField | None = None
    compare_and_set: StrictBool = False


class EnvironmentIn(_Body):
    env: Name
    description: Description = ""
    requires_approval: StrictBool = False


class DeployIn(_Body):
    name: Name
    version: IdField
    reason: Description = ""


class DecisionIn(_Body):
    comment: Description = ""


class WebhookIn(_Body):
    url: Annotated[str, Field(json_schema_extra=documented(URL_PATTERN))]
    # documented, not validated here: pydantic's message would quote the secret; the service's does not
    secret: Annotated[str, Field(json_schema_extra={"minLength": MIN_SECRET})]
    events: list[Annotated[str, Field(json_schema_extra={"enum": ["*", *EVENTS]})]] | None = None
    model: str | None = None


class RuleIn(_Body):
    rule: str | dict[str, Any]
    apply: StrictBool = False


def _registry(request: Request) -> RegistryClient:
    """The registry acting as the request's authenticated identity (the audit actor), else as the server."""
    settings = request.app.state.settings
    identity = identity_of(request)
    if identity is not None and identity.name != settings.user:
        settings = dataclasses.replace(settings, user=identity.name)
    client = registry_for(settings)
    if identity is not None:
        client.separate_duties = True
    return client


def _out(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
    if isinstance(value, list):
        return [_out(v) for v in value]
    return value


# ---------------------------------------------------------------- models and versions
@router.get("/models")
def list_models(request: Request) -> Any:
    """Registered models in the projects the caller may see."""
    return _out([m for m in _registry(request).list_models() if tagged_visible(request, m.tags)])


@router.post("/models", status_code=201, responses=error_responses(409))
def create_model(body: ModelIn, request: Request) -> Any:
    guard_rollout_tags(request, body.name, body.tags)
    return _out(_registry(request).create_model(body.name, body.description, body.tags))


@router.get("/models/{name}")
def get_model(name: TextPath, request: Request) -> Any:
    return _out(_registry(request).get_model(name))


@router.patch("/models/{name}")
def update_model(name: TextPath, body: ModelPatch, request: Request) -> Any:
    guard_rollout_tags(request, name, body.tags or {})
    return _out(_registry(request).update_model(name, body.description, body.tags))


@router.delete("/models/{name}", status_code=204, responses=error_responses(409))
def delete_model(name: TextPath, request: Request, force: bool = False) -> None:
    _registry(request).delete_model(name, force=force)


@router.get("/models/{name}/versions")
def list_versions(name: TextPath, request: Request) -> Any:
    return _out(_registry(request).list_versions(name))


@router.post("/models/{name}/versions", status_code=201, responses=error_responses(409))
def register(name: TextPath, body: VersionIn, request: Request) -> Any:
    # A folder path would name a place on the server's own disk, which a remote caller has no business reading.
    if not body.source.startswith("runs:/"):
        raise InvalidInputError(field="source", value=body.source,
                                expected="a runs:/<run id>/<path> URI of a model logged to this server")
    return _out(_registry(request).register(name, body.source, description=body.description, tags=body.tags,
                                               create=body.create))


@router.get("/models/{name}/versions/{version}")
def get_version(name: TextPath, version: IdPath, request: Request) -> Any:
    return _out(_registry(request).get_version(name, version))


@router.patch("/models/{name}/versions/{version}")
def update_version(name: TextPath, version: IdPath, body: ModelPatch, request: Request) -> Any:
    return _out(_registry(request).update_version(name, version, body.description, body.tags))


@router.delete("/models/{name}/versions/{version}", status_code=204,
                responses=error_responses(409))
def delete_version(name: TextPath, version: IdPath, request: Request, force: bool = False) -> None:
    _registry(request).delete_version(name, version, force=force)


@router.get("/models/{name}/versions/{version}/lineage")
def lineage(name: TextPath, version: IdPath, request: Request) -> Any:
    return _registry(request).lineage(name, version)


@router.get("/models/{name}/versions/{version}/artifact-uri")
def artifact_uri(name: TextPath, version: IdPath, request: Request) -> Any:
    """Where the version's files are stored (a folder or an object-store URL)."""
    return {"artifact_uri": _registry(request).artifact_uri(name, version)}


@router.get("/models/{name}/versions/{version}/manifest")
def manifest(name: TextPath, version: IdPath, request: Request) -> Any:
    """The version's model manifest: flavor, signature, requirements, metadata, extra files, sha256s."""
    return _registry(request).manifest(name, version)


@router.get("/models/{name}/versions/{version}/extra/{filename:path}")
def extra_file(name: TextPath, version: IdPath, filename: PlainPath, request: Request) -> Response:
    """The bytes of an extra file stored with the version (e.g. the training schema)."""
    return Response(_registry(request).extra_file(name, version, filename), media_type="application/octet-stream")


@router.get("/datasets/{digest}/versions")
def versions_trained_on(digest: DigestPath, request: Request) -> Any:
    found = _registry(request).versions_trained_on(digest)
    return _out(keep_visible(found, lambda v: v.name, visible_models(request, [v.name for v in found])))


# ---------------------------------------------------------------- aliases
@router.get("/models/{name}/aliases/{alias}")
def get_alias(name: TextPath, alias: AliasPath, request: Request) -> Any:
    return _out(_registry(request).get_alias(name, alias))


@router.put("/models/{name}/aliases/{alias}", responses=error_responses(409))
def set_alias(name: TextPath, alias: AliasPath, body: AliasIn, request: Request) -> Any:
    expected: Any = body.expected if body.compare_and_set else "any"
    before = _registry(request).set_alias(name, alias, body.version, expected=expected)
    return {"name": name, "alias": alias, "version": body.version, "previous": before}


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
def delete_alias(name: TextPath, alias: AliasPath, request: Request) -> None:
    _registry(request).delete_alias(name, alias)


@router.get("/resolve", responses=error_responses(404))
def resolve(uri: ModelUriQuery, request: Request) -> Any:
    """The concrete version a models:/ URI (alias, number or latest) names now."""
    return _out(_registry(request).resolve(uri))


# ---------------------------------------------------------------- environments and approvals
@router.get("/environments")
def list_environments(request: Request) -> Any:
    return _registry(request).environments.list()


@router.post("/environments", status_code=201, responses=error_responses(409))
def create_environment(body: EnvironmentIn, request: Request) -> Any:
    return _registry(request).environments.create(body.env, body.description, body.requires_approval)


@router.post("/environments/{env}/deployments", status_code=201, responses=error_responses(409))
def deploy(env: TextPath, body: DeployIn, request: Request) -> Any:
    outcome = _registry(request).environments.deploy(body.name, body.version, env, body.reason)
    kind = "approval_request" if hasattr(outcome, "status") else "deployment"
    return {"kind": kind, **dataclasses.asdict(outcome)}


@router.get("/environments/{env}/history")
def history(env: TextPath, request: Request, model: OptionalTextQuery = None, limit: Limit = 100) -> Any:
    """Deployment changes, newest first, of the models the caller may see (in the query: ``limit`` holds)."""
    from mloop.registry import _tables as registry_tables

    visible = sql_model_visible(request, registry_tables.deployment_history.c.name)
    return _out(_registry(request).environments.history(env, model, limit, where=visible))


@router.get("/approvals")
def pending(request: Request, env: OptionalTextQuery = None, model: OptionalTextQuery = None) -> Any:
    """Pending approval requests of the models the caller may see (pending requests are few: not paged)."""
    found = _registry(request).environments.pending(env, model)
    return _out(keep_visible(found, lambda r: r.name, visible_models(request, [r.name for r in found])))


@router.post("/approvals/{request_id}/approve", responses=error_responses(409))
def approve(request_id: IdPath, body: DecisionIn, request: Request) -> Any:
    return _out(_registry(request).environments.approve(request_id, body.comment))


@router.post("/approvals/{request_id}/reject", responses=error_responses(409))
def reject(request_id: IdPath, body: DecisionIn, request: Request) -> Any:
    return _out(_registry(request).environments.reject(request_id, body.comment))


# ---------------------------------------------------------------- audit, webhooks, rules
@router.get("/audit", responses=error_responses(404))
def audit(request: Request, model: Annotated[Description | None, Query()] = None, action: AuditAction = None,
          limit: Limit = 100) -> Any:
    """Registry changes, newest first, of the models the caller may see (filtered in the query: ``limit`` holds)."""
    from mloop.registry import _tables as registry_tables

    return _out(_registry(request).audit(model, action, limit,
                                         where=sql_model_visible(request, registry_tables.audit_log.c.model)))


@router.get("/webhooks")
def list_webhooks(request: Request) -> Any:
    return _registry(request).webhooks.list()


@router.post("/webhooks", status_code=201, responses=error_responses(404))
def add_webhook(body: WebhookIn, request: Request) -> Any:
    return _registry(request).webhooks.add(body.url, body.secret, body.events, body.model)


@router.get("/webhooks/{webhook_id}/deliveries")
def deliveries(webhook_id: IdPath, request: Request, limit: Limit = 100) -> Any:
    return _out(_registry(request).webhooks.deliveries(webhook_id, limit))


@router.get("/rules")
def list_rules(request: Request) -> Any:
    return _registry(request).rules.list()


@router.post("/rules", status_code=201)
def save_rule(body: RuleIn, request: Request) -> Any:
    from mloop.registry.rules.service import as_rule

    rule = as_rule(body.rule)
    return {"name": rule.name, "version": _registry(request).rules.save(rule)}


@router.get("/rules/{name}")
def get_rule(name: TextPath, request: Request, version: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None) -> Any:
    return _registry(request).rules.get(name, version).to_dict()


@router.post("/select", responses=error_responses(404, 409))
def select(body: RuleIn, request: Request) -> Any:
    """Evaluate a rule (a stored name, YAML text or a mapping); ``apply`` moves the alias / environment."""
    rules = _registry(request).rules
    selection = rules.apply(body.rule) if body.apply else rules.evaluate(body.rule)
    return {"rule": selection.rule.to_dict(), "winner": selection.winner, "applied": selection.applied,
            "candidates": selection.candidates.astype(object).where(selection.candidates.notna(), None)
            .to_dict(orient="records")}
