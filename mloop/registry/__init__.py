"""The model registry: packaged models with signatures, versions, aliases, environments,
lineage, audit, webhooks, approvals and rule-based selection.

Importing it installs the retention guard that keeps tracking's purge away from runs
that registered versions came from.
"""

from mloop.registry import _guard
from mloop.registry._log import LoggedModel, log_model, log_model_to_run, open_registry, registry_for
from mloop.registry.client import RegistryClient
from mloop.registry.entities import ApprovalRequest, AuditEntry, Deployment, ModelVersion, RegisteredModel
from mloop.registry.loader import LoadedModel, load_model, resolve_model_uri
from mloop.registry.packaging import save_model
from mloop.registry.signature import ColumnSpec, FieldError, OutputSpec, Signature, infer_signature

_guard.install()

__all__ = [
    "ApprovalRequest",
    "AuditEntry",
    "ColumnSpec",
    "Deployment",
    "FieldError",
    "LoadedModel",
    "LoggedModel",
    "ModelVersion",
    "OutputSpec",
    "RegisteredModel",
    "RegistryClient",
    "Signature",
    "infer_signature",
    "load_model",
    "log_model",
    "log_model_to_run",
    "open_registry",
    "registry_for",
    "resolve_model_uri",
    "save_model",
]
