"""The registry's domain objects: frozen dataclasses with no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ApprovalRequest", "AuditEntry", "Deployment", "ModelVersion", "RegisteredModel", "WebhookDelivery"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModel:
    """A named model: its versions live under it; ``aliases`` maps alias -> version."""

    name: str
    description: str
    owner: str
    created: int
    updated: int
    latest_version: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersion:
    """One registered version: where its bytes are, where it came from, and a snapshot of the run's metrics."""

    name: str
    version: int
    run_id: str | None
    source: str
    storage: str
    flavor: str
    signature: dict[str, Any] | None
    metrics: dict[str, float]
    status: str
    description: str
    created: int
    creator: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "source": self.source,
                "flavor": self.flavor, "signature": self.signature, "metrics": self.metrics, "status": self.status,
                "description": self.description, "created": self.created, "creator": self.creator,
                "tags": self.tags, "aliases": list(self.aliases), "uri": self.uri, "storage": self.storage}


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """One change of what runs in an environment (``version`` None means removed)."""

    env: str
    name: str
    version: int | None
    previous: int | None
    time: int
    actor: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """Who changed what in the registry, when, with the state before and after."""

    id: int
    time: int
    actor: str
    action: str
    model: str | None
    target: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequest:
    """A pending (or decided) request to put a version into an environment that requires approval."""

    id: int
    env: str
    name: str
    version: int
    status: str  # pending | approved | rejected
    requested_by: str
    requested: int
    reason: str
    decided_by: str | None
    decided: int | None
    comment: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookDelivery:
    """One attempt to deliver one event to one webhook."""

    id: int
    webhook_id: int
    delivery_id: str
    event: str
    attempt: int
    status_code: int | None
    ok: bool
    error: str
    time: int
    duration_ms: float
