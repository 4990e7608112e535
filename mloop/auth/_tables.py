"""Identity tables (schema only; migration auth_0001). Times are epoch milliseconds, UTC."""

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, String, Table

from mloop.store.sql.tables import metadata

users = Table(
    "auth_users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # user or service (a service account: CI, `mloop serve`)
    Column("is_admin", Boolean, nullable=False),  # server-wide admin: every project, users, gc, webhooks
    Column("disabled", Boolean, nullable=False),
    Column("created", BigInteger, nullable=False),
)

tokens = Table(
    "auth_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False, unique=True),  # the public part of a token: how it is found
    Column("user_id", Integer, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of the whole token; the token itself is never kept
    Column("label", String(256), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger),  # None: never
    Column("revoked", BigInteger),
    Column("last_used", BigInteger),
)

grants = Table(
    "auth_grants", metadata,
    Column("user_id", Integer, ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True),
    Column("project", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
)

# Browser sessions of the web UI (migration auth_sessions_0001): the cookie holds a random secret, the row its
# sha256; a session lives no longer than its own expiry nor than the token that opened it.
sessions = Table(
    "auth_sessions", metadata,
    Column("digest", String(64), primary_key=True),
    Column("token_id", Integer, ForeignKey("auth_tokens.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),  # sent back by the pages in a header on every change
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
)
