"""Registry tables (schema only; behaviour lives in _sql.py). Times are epoch milliseconds, UTC."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from mloop.store.sql.tables import metadata


def _model_fk() -> ForeignKey:
    return ForeignKey("registered_models.name", ondelete="CASCADE")


registered_models = Table(
    "registered_models", metadata,
    Column("name", String(256), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("owner", String(256), nullable=False, default=""),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("latest_version", Integer, nullable=False, default=0),
)

model_tags = Table(
    "registered_model_tags", metadata,
    Column("name", String(256), _model_fk(), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions", metadata,
    Column("name", String(256), _model_fk(), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.run_id")),
    Column("source", Text, nullable=False),
    Column("storage", Text, nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("signature", Text),
    Column("metrics", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created", BigInteger, nullable=False),
    Column("creator", String(256), nullable=False),
    Index("ix_model_versions_run_id", "run_id"),
)

version_tags = Table(
    "model_version_tags", metadata,
    Column("name", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"], ondelete="CASCADE"),
)

aliases = Table(
    "model_aliases", metadata,
    Column("name", String(256), _model_fk(), primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

environments = Table(
    "deploy_environments", metadata,
    Column("env", String(128), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("requires_approval", Boolean, nullable=False, default=False),
    Column("created", BigInteger, nullable=False),
)

deployments = Table(
    "deployments", metadata,
    Column("env", String(128), ForeignKey("deploy_environments.env", ondelete="CASCADE"), primary_key=True),
    Column("name", String(256), _model_fk(), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

deployment_history = Table(
    "deployment_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("env", String(128), nullable=False),
    Column("name", String(256), nullable=False),
    Column("version", Integer),
    Column("previous", Integer),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_deployment_history_env_name", "env", "name"),
)

audit_log = Table(
    "registry_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("model", String(256)),
    Column("target", String(512), nullable=False),
    Column("before", Text),
    Column("after", Text),
    Index("ix_registry_audit_model", "model"),
)

webhooks = Table(
    "registry_webhooks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("model", String(256)),
    Column("active", Boolean, nullable=False, default=True),
    Column("created", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "registry_webhook_deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", Integer, ForeignKey("registry_webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("delivery_id", String(32), nullable=False),
    Column("event", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer),
    Column("ok", Boolean, nullable=False),
    Column("error", Text, nullable=False, default=""),
    Column("time", BigInteger, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Index("ix_registry_webhook_deliveries_webhook_id", "webhook_id"),
)

promotion_requests = Table(
    "promotion_requests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("env", String(128), ForeignKey("deploy_environments.env", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), _model_fk(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_by", String(256), nullable=False),
    Column("requested", BigInteger, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("decided_by", String(256)),
    Column("decided", BigInteger),
    Column("comment", Text, nullable=False, default=""),
)

selection_rules = Table(
    "selection_rules", metadata,
    Column("name", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
)
