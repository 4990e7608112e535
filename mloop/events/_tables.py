"""Outbox tables (schema only). Times are epoch milliseconds, UTC.

``event_outbox`` holds one row per event, written in the transaction of the change it reports;
``event_deliveries`` one row per (event, subscribed webhook), the unit a worker claims, retries and settles.
Each attempt is logged in the registry's ``registry_webhook_deliveries`` (status, error, duration).
"""

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from mloop.store.sql.tables import metadata

events = Table(
    "event_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(32), nullable=False, unique=True),  # stable id a receiver dedupes on
    Column("source", String(32), nullable=False),  # the capability: registry, features
    Column("name", String(64), nullable=False),
    Column("subject", String(256)),  # the model (or feature project) the event is about, for subscriptions
    Column("payload", Text, nullable=False),  # the exact JSON body every delivery sends
    Column("created", BigInteger, nullable=False),
)

deliveries = Table(
    "event_deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event", Integer, ForeignKey("event_outbox.id", ondelete="CASCADE"), nullable=False),
    Column("webhook_id", Integer, ForeignKey("registry_webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("delivery_id", String(32), nullable=False),
    Column("state", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", BigInteger, nullable=False),
    Column("lease_until", BigInteger),
    Column("lease_owner", String(64)),
    Column("last_error", Text, nullable=False),
    Column("updated", BigInteger, nullable=False),
    UniqueConstraint("event", "webhook_id"),
    Index("ix_event_deliveries_state_next_attempt", "state", "next_attempt"),
    Index("ix_event_deliveries_webhook_id_state", "webhook_id", "state"),
)
