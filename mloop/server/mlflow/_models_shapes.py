"""mloop's registered models and versions in the shapes of MLflow's ``RegisteredModel`` and ``ModelVersion``."""

from __future__ import annotations

from typing import Any

from mloop.registry.entities import ModelVersion, RegisteredModel
from mloop.server.mlflow._artifacts_paths import LOGGED_MODEL_ID

# mloop has environments where MLflow had stages: a version deployed to one of these is in that stage
STAGE_ENVIRONMENTS = {"Staging": "staging", "Production": "production"}
MODEL_ID_TAG = "mlflow.model_id"  # the logged model a version was registered from, kept as a version tag


def tags_out(tags: dict[str, str], hidden: tuple[str, ...] = ()) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items()) if k not in hidden]


def version_out(version: ModelVersion, stage: str = "None") -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion`` (versions are strings there; READY since mloop's writes are whole)."""
    model_id = version.tags.get(MODEL_ID_TAG, "")
    out: dict[str, Any] = {
        "name": version.name, "version": str(version.version), "creation_timestamp": version.created,
        "last_updated_timestamp": version.created, "user_id": version.creator, "current_stage": stage,
        "description": version.description, "source": version.source,
        **({"run_id": version.run_id} if version.run_id else {}),
        "status": "READY", "tags": tags_out(version.tags), "aliases": sorted(version.aliases),
    }
    if LOGGED_MODEL_ID.fullmatch(model_id):
        out["model_id"] = model_id
    return out


def model_out(model: RegisteredModel, latest: list[ModelVersion] | None = None) -> dict[str, Any]:
    """A registered model as MLflow's ``RegisteredModel``."""
    return {
        "name": model.name, "creation_timestamp": model.created, "last_updated_timestamp": model.updated,
        "user_id": model.owner, "description": model.description, "tags": tags_out(model.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(model.aliases.items())],
        **({"latest_versions": [version_out(v) for v in latest]} if latest else {}),
    }


def model_row(model: RegisteredModel) -> dict[str, Any]:
    """The fields a registered-model search filters on."""
    return {"name": model.name, **{f"tags.{k}": v for k, v in model.tags.items()}}


def version_row(version: ModelVersion) -> dict[str, Any]:
    """The fields a model-version search filters on."""
    return {"name": version.name, "version_number": version.version, "run_id": version.run_id or "",
            "source_path": version.source, "source": version.source, "user_id": version.creator,
            **{f"tags.{k}": v for k, v in version.tags.items()}}
