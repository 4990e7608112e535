"""MLflow's REST protocol over mloop's stores, so that the ``mlflow`` client works against ``mloop server``.

The mlflow client speaks to three prefixes: ``/api/2.0/mlflow`` (tracking and the model registry; its web UI
uses the same calls under ``/ajax-api/2.0/mlflow``), ``/api/2.0/mlflow-artifacts`` (the artifact proxy) and,
for MLflow 3's logged models, ``/api/2.0/mlflow/logged-models``. Each idea has one module here with its own
``router``; ``routers()`` gives them to the app. The routes translate between MLflow's shapes and mloop's
capabilities and hold no logic of their own: a run logged through the mlflow client is an mloop run.

The registry, logged-model and artifact routers stay out of mloop's OpenAPI document
(``include_in_schema=False``): they answer errors in MLflow's shape, not the document's ``Error``, and MLflow's own
REST reference describes them.
"""

from __future__ import annotations

from fastapi import APIRouter

from mloop.server.mlflow._protocol import ARTIFACTS_PREFIX, MLFLOW_PREFIXES, MlflowRoute

__all__ = ["MLFLOW_PREFIXES", "MlflowRoute", "routers"]


def routers() -> list[tuple[str, APIRouter]]:
    """The (prefix, router) pairs of MLflow's protocol, in the order the app includes them."""
    from mloop.server.mlflow import _artifacts_mpu, _models_versions, artifacts, logged_models, registry, tracking

    mounted: list[tuple[str, APIRouter]] = []
    for prefix in MLFLOW_PREFIXES:
        mounted.append((prefix, tracking.router))
        mounted += [(prefix, registry.router), (prefix, _models_versions.router), (prefix, logged_models.router)]
    mounted += [(ARTIFACTS_PREFIX, artifacts.router), (ARTIFACTS_PREFIX, _artifacts_mpu.router)]
    return mounted
