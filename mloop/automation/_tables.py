"""Automation tables (schema only). Times are epoch milliseconds (UTC).

A trigger's event is a row whose ``dedupe_key`` is unique: two schedulers that see the same condition insert the
same key and only one row exists, so a condition fires once. A firing is (rule, event), also unique; each of its
actions is a row whose status moves pending -> running -> done|failed by conditional UPDATEs, so a restarted
runtime resumes at the first unfinished action and never does a finished one again.
"""

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from mloop.store.sql.tables import metadata

rules = Table(
    "automation_rules", metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, nullable=False),  # bumped by each apply that changes the spec
    Column("spec", Text, nullable=False),  # the rule as JSON
    Column("paused", Integer, nullable=False),
    Column("updated", BigInteger, nullable=False),
)

rule_versions = Table(
    "automation_rule_versions", metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("spec", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
)

events = Table(
    "automation_events", metadata,
    Column("id", String(32), primary_key=True),
    Column("dedupe_key", String(512), nullable=False, unique=True),  # one row per condition, from any process
    Column("kind", String(32), nullable=False),  # schedule | new_data | drift | metric_drop | code_change | manual
    Column("rule", String(128), nullable=False),  # the rule whose trigger saw it
    Column("payload", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Index("ix_automation_events_rule_created", "rule", "created"),
)

firings = Table(
    "automation_firings", metadata,
    Column("id", String(32), primary_key=True),
    Column("event", String(32), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("model", String(256), nullable=False),
    Column("state", String(16), nullable=False),  # pending | running | done | failed | skipped
    Column("reason", Text, nullable=False),  # why it fired (the condition with its values)
    Column("lease_owner", String(64)),
    Column("lease_until", BigInteger),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    UniqueConstraint("rule", "event"),
    Index("ix_automation_firings_model_created", "model", "created"),
)

actions = Table(
    "automation_actions", metadata,
    Column("firing", String(32), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("spec", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | running | done | failed | skipped
    Column("external_id", String(64)),  # what it started (a flow run id), looked up again on resume
    Column("result", Text, nullable=False),
    Column("started", BigInteger),
    Column("finished", BigInteger),
)
