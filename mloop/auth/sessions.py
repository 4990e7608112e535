"""Browser sessions: a person signs in to the web UI once with a token, and the browser keeps a session cookie.

The cookie carries a random 256-bit secret, never the token; the database keeps only the secret's sha256 (as it
does for tokens), with the token that opened the session and a CSRF secret that the pages send back in a header
on every change. A session ends at its expiry, at logout, or as soon as its token is revoked or expires or its
user is disabled: it can never outlive the credential it came from.

>>> import tempfile
>>> from mloop.auth.store import AuthStore
>>> url = f"sqlite:///{tempfile.mkdtemp()}/meta.db"
>>> _ = AuthStore(url).add_user("ana")
>>> token = AuthStore(url).create_token("ana")
>>> sessions = SessionStore(url)
>>> opened = sessions.open(token.text)
>>> sessions.identity(opened.secret)[0].name
'ana'
>>> sessions.close(opened.secret); sessions.identity(opened.secret) is None
True
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from mloop._util.clock import now_ms
from mloop.auth import _tables as t
from mloop.auth.roles import Identity
from mloop.auth.store import _roles, _valid
from mloop.auth.tokens import digest_of, split_token
from mloop.store.sql import open_database

__all__ = ["SESSION_HOURS", "OpenedSession", "SessionStore"]

SESSION_HOURS = 12  # a working day: a browser left open overnight signs in again


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A new session: ``secret`` goes into the cookie (and nowhere else), ``csrf`` to the pages."""

    secret: str
    csrf: str
    name: str
    expires: int

    def __repr__(self) -> str:  # a session secret in a log is a stolen session
        return f"OpenedSession(name={self.name!r}, secret='***', csrf='***', expires={self.expires})"


class SessionStore:
    """Sessions over the metadata database at ``db_url`` (SQLite or PostgreSQL)."""

    def __init__(self, db_url: str, hours: float = SESSION_HOURS) -> None:
        self.db = open_database(db_url)
        self.lifetime_ms = int(hours * 3600 * 1000)

    def open(self, token: str, user: str | None = None) -> OpenedSession | None:
        """A session for the holder of ``token`` (and, when given, only if it is ``user``'s); None when refused.

        The reason for a refusal is not told apart (unknown token, wrong user, revoked...): a guesser learns
        nothing from it.
        """
        prefix = split_token(token)
        if prefix is None:
            return None
        now = now_ms()
        with self.db.write() as conn:
            row = conn.execute(select(t.tokens, t.users.c.name, t.users.c.disabled)
                               .join(t.users, t.users.c.id == t.tokens.c.user_id)
                               .where(t.tokens.c.prefix == prefix)).first()
            if row is None or not _valid(row, digest_of(token), now):
                return None
            if user is not None and not hmac.compare_digest(user.encode(), row.name.encode()):
                return None
            conn.execute(delete(t.sessions).where(t.sessions.c.expires <= now))  # expired ones go as new ones come
            secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            expires = now + self.lifetime_ms
            if row.expires is not None:
                expires = min(expires, row.expires)
            conn.execute(insert(t.sessions).values(digest=digest_of(secret), token_id=row.id, csrf=csrf,
                                                   created=now, expires=expires))
        return OpenedSession(secret=secret, csrf=csrf, name=row.name, expires=expires)

    def identity(self, secret: str) -> tuple[Identity, str] | None:
        """The identity of a live session and its CSRF secret; None for an unknown, expired or orphaned one."""
        now = now_ms()
        with self.db.read() as conn:
            row = conn.execute(
                select(t.sessions.c.csrf, t.sessions.c.expires.label("session_expires"), t.tokens,
                       t.users.c.name, t.users.c.kind, t.users.c.is_admin, t.users.c.disabled)
                .join(t.tokens, t.tokens.c.id == t.sessions.c.token_id)
                .join(t.users, t.users.c.id == t.tokens.c.user_id)
                .where(t.sessions.c.digest == digest_of(secret))).first()
            # the token is not presented again: _valid is given its own digest, so it checks only that the token
            # is not revoked nor expired and that its user is not disabled
            if row is None or row.session_expires <= now or not _valid(row, row.digest, now):
                return None
            identity = Identity(name=row.name, kind=row.kind, is_admin=bool(row.is_admin),
                                roles=_roles(conn, row.user_id))
        return identity, row.csrf

    def close(self, secret: str) -> None:
        """End the session whose cookie holds ``secret`` (nothing happens for an unknown one)."""
        with self.db.write() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.digest == digest_of(secret)))
