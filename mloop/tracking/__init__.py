"""Experiment tracking: experiments, runs, params, metrics, artifacts, datasets and search."""

from mloop.tracking.client import RunComparison, TrackingClient
from mloop.tracking.entities import Artifact, Dataset, Experiment, Metric, Run, RunStatus
from mloop.tracking.run import RunContext

__all__ = [
    "Artifact",
    "Dataset",
    "Experiment",
    "Metric",
    "Run",
    "RunComparison",
    "RunContext",
    "RunStatus",
    "TrackingClient",
]
