"""MLflow's tracking API (experiments, runs, params, metrics, tags, datasets, search) on mloop's tracking store."""

from __future__ import annotations

from fastapi import APIRouter

from mloop.server.mlflow._protocol import MlflowRoute

router = APIRouter(route_class=MlflowRoute, tags=["mlflow"])
