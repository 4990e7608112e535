"""AuthStore: users, service accounts, tokens and project roles in the metadata database.

>>> import tempfile
>>> store = AuthStore(f"sqlite:///{tempfile.mkdtemp()}/meta.db")
>>> _ = store.add_user("ana")
>>> token = store.create_token("ana")
>>> store.authenticate(token.text).name
'ana'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from mloop._util.clock import now_ms
from mloop._util.names import check_name, check_text
from mloop.auth import _tables as t
from mloop.auth.roles import Identity, Role, parse_role
from mloop.auth.tokens import NewToken, digest_of, new_token, split_token
from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from mloop.store.sql import open_database

__all__ = ["AuthStore", "TokenInfo", "UserInfo"]

_LAST_USED_EVERY_MS = 60_000  # last-used time is written at most once a minute per token, not on every request


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    kind: str
    is_admin: bool
    disabled: bool
    created: int
    roles: dict[str, str]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be shown about a token: never the token itself, nor its digest."""

    prefix: str
    user: str
    label: str
    created: int
    expires: int | None
    revoked: int | None
    last_used: int | None


class AuthStore:
    """Identity over the metadata database at ``db_url`` (SQLite or PostgreSQL)."""

    def __init__(self, db_url: str) -> None:
        self.db = open_database(db_url)

    # ---------------------------------------------------------------- users
    def add_user(self, name: str, *, service_account: bool = False, admin: bool = False) -> UserInfo:
        """Add a user (or, with ``service_account``, a service account); ``admin`` makes it a server-wide admin."""
        check_name(name, "user")
        with self.db.write() as conn:
            if conn.execute(select(t.users.c.id).where(t.users.c.name == name)).first() is not None:
                raise AlreadyExistsError(f"A user named '{name}' exists already.", field="user")
            conn.execute(insert(t.users).values(name=name, kind="service" if service_account else "user",
                                                is_admin=admin, disabled=False, created=now_ms()))
        return self.user(name)

    def user(self, name: str) -> UserInfo:
        with self.db.read() as conn:
            return _user_info(conn, _user_row(conn, name))

    def list_users(self) -> list[UserInfo]:
        with self.db.read() as conn:
            return [_user_info(conn, row) for row in conn.execute(select(t.users).order_by(t.users.c.name))]

    def set_disabled(self, name: str, disabled: bool = True) -> None:
        """Disable (or enable again) a user: every token of a disabled user is refused."""
        with self.db.write() as conn:
            row = _user_row(conn, name)
            conn.execute(update(t.users).where(t.users.c.id == row.id).values(disabled=disabled))

    # ---------------------------------------------------------------- roles
    def grant(self, name: str, project: str, role: str | Role) -> None:
        """Give ``name`` the ``role`` in ``project`` (replacing the role it had there)."""
        role = role if isinstance(role, Role) else parse_role(role)
        check_name(project, "project")
        with self.db.write() as conn:
            user_id = _user_row(conn, name).id
            conn.execute(delete(t.grants).where(t.grants.c.user_id == user_id, t.grants.c.project == project))
            conn.execute(insert(t.grants).values(user_id=user_id, project=project, role=role.label))

    def revoke(self, name: str, project: str) -> bool:
        """Take away ``name``'s role in ``project``; False when it had none."""
        with self.db.write() as conn:
            user_id = _user_row(conn, name).id
            gone = conn.execute(delete(t.grants).where(t.grants.c.user_id == user_id, t.grants.c.project == project))
        return bool(gone.rowcount)

    # ---------------------------------------------------------------- tokens
    def create_token(self, name: str, *, expires_in: timedelta | None = None, label: str = "") -> NewToken:
        """A new token for ``name``: its ``text`` is shown to the caller once and never stored."""
        check_text(label, "label", 256)
        if expires_in is not None and expires_in.total_seconds() <= 0:
            raise InvalidInputError(field="expires", value=str(expires_in), expected="a positive duration")
        token = new_token()
        now = now_ms()
        expires = None if expires_in is None else now + int(expires_in.total_seconds() * 1000)
        with self.db.write() as conn:
            user_id = _user_row(conn, name).id
            conn.execute(insert(t.tokens).values(prefix=token.prefix, user_id=user_id, digest=token.digest,
                                                 label=label, created=now, expires=expires))
        return token

    def list_tokens(self, name: str | None = None) -> list[TokenInfo]:
        q = select(t.tokens, t.users.c.name).join(t.users, t.users.c.id == t.tokens.c.user_id).order_by(t.tokens.c.id)
        if name is not None:
            q = q.where(t.users.c.name == name)
        with self.db.read() as conn:
            return [TokenInfo(prefix=r.prefix, user=r.name, label=r.label, created=r.created, expires=r.expires,
                              revoked=r.revoked, last_used=r.last_used) for r in conn.execute(q)]

    def revoke_token(self, prefix: str) -> None:
        """Revoke the token whose prefix is ``prefix`` (servers stop accepting it within their cache time)."""
        prefix = prefix.removeprefix("mlp_").split("_")[0]
        with self.db.write() as conn:
            gone = conn.execute(update(t.tokens).where(t.tokens.c.prefix == prefix, t.tokens.c.revoked.is_(None))
                                .values(revoked=now_ms()))
        if not gone.rowcount:
            raise NotFoundError(f"No active token with prefix '{prefix}'; `mloop auth tokens list` shows them.",
                                field="token")

    def authenticate(self, text: str) -> Identity | None:
        """The identity a token proves, or None when it is malformed, unknown, expired, revoked or disabled."""
        prefix = split_token(text)
        if prefix is None:
            return None
        now = now_ms()
        with self.db.read() as conn:
            row = conn.execute(select(t.tokens, t.users.c.name, t.users.c.kind, t.users.c.is_admin,
                                      t.users.c.disabled).join(t.users, t.users.c.id == t.tokens.c.user_id)
                               .where(t.tokens.c.prefix == prefix)).first()
            if row is None or not _valid(row, digest_of(text), now):
                return None
            identity = Identity(name=row.name, kind=row.kind, is_admin=bool(row.is_admin),
                                roles=_roles(conn, row.user_id))
        if row.last_used is None or now - row.last_used > _LAST_USED_EVERY_MS:
            with self.db.write() as conn:
                conn.execute(update(t.tokens).where(t.tokens.c.id == row.id).values(last_used=now))
        return identity


def _valid(row: Any, digest: str, now: int) -> bool:
    import hmac

    return (hmac.compare_digest(row.digest, digest) and row.revoked is None and not row.disabled
            and (row.expires is None or row.expires > now))


def _user_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"No user named '{name}'; add it with `mloop auth users add {name}`.", field="user")
    return row


def _roles(conn: Connection, user_id: int) -> dict[str, Role]:
    rows = conn.execute(select(t.grants.c.project, t.grants.c.role).where(t.grants.c.user_id == user_id))
    return {r.project: parse_role(r.role) for r in rows}


def _user_info(conn: Connection, row: Any) -> UserInfo:
    return UserInfo(name=row.name, kind=row.kind, is_admin=bool(row.is_admin), disabled=bool(row.disabled),
                    created=row.created, roles={p: r.label for p, r in _roles(conn, row.id).items()})
