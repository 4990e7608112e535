"""Registry: registered models, versions, aliases, environments, audit, webhooks, approvals, rules."""

import sqlalchemy as sa
from alembic import op

revision = "registry_0001"
down_revision = None
branch_labels = ("registry",)
depends_on = "tracking_0001"


def _model_fk() -> sa.ForeignKey:
    return sa.ForeignKey("registered_models.name", ondelete="CASCADE")


def _models() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("name", sa.String(256), _model_fk(), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(256), _model_fk(), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id")),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("storage", sa.Text, nullable=False),
        sa.Column("flavor", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("creator", sa.String(256), nullable=False),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_version_tags",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"],
                                ondelete="CASCADE"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(256), _model_fk(), primary_key=True),
        sa.Column("alias", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
    )


def _environments() -> None:
    op.create_table(
        "deploy_environments",
        sa.Column("env", sa.String(128), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("requires_approval", sa.Boolean, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "deployments",
        sa.Column("env", sa.String(128), sa.ForeignKey("deploy_environments.env", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("name", sa.String(256), _model_fk(), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
    )
    op.create_table(
        "deployment_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("previous", sa.Integer),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_deployment_history_env_name", "deployment_history", ["env", "name"])
    op.create_table(
        "promotion_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.String(128), sa.ForeignKey("deploy_environments.env", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(256), _model_fk(), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("requested", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("decided_by", sa.String(256)),
        sa.Column("decided", sa.BigInteger),
        sa.Column("comment", sa.Text, nullable=False),
    )


def _audit_and_hooks() -> None:
    op.create_table(
        "registry_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256)),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
    )
    op.create_index("ix_registry_audit_model", "registry_audit", ["model"])
    op.create_table(
        "registry_webhooks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("model", sa.String(256)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "registry_webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.Integer, sa.ForeignKey("registry_webhooks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_registry_webhook_deliveries_webhook_id", "registry_webhook_deliveries", ["webhook_id"])
    op.create_table(
        "selection_rules",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
    )


def upgrade() -> None:
    _models()
    _environments()
    _audit_and_hooks()


def downgrade() -> None:
    for name in ("selection_rules", "registry_webhook_deliveries", "registry_webhooks", "registry_audit",
                 "promotion_requests", "deployment_history", "deployments", "deploy_environments",
                 "model_aliases", "model_version_tags", "model_versions", "registered_model_tags",
                 "registered_models"):
        op.drop_table(name)
