"""Tracking's domain objects: frozen dataclasses with no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from mloop._util.clock import from_ms


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"


class Lifecycle(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Experiment:
    experiment_id: str
    name: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)


class Metric(NamedTuple):
    """One metric point: MLflow's (key, value, timestamp in ms, step); a tuple, so long histories are cheap."""

    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    path: str
    size: int
    sha256: str
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    dataset_id: str
    name: str
    digest: str
    rows: int | None
    schema: dict[str, str]
    source: str
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    user: str
    description: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    parent_run_id: str | None
    artifact_uri: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def started(self) -> datetime | None:
        return from_ms(self.start_time)

    @property
    def ended(self) -> datetime | None:
        return from_ms(self.end_time)
