"""The identity store on SQLite and PostgreSQL: tokens hashed at rest, shown once, revocable, expiring."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from mloop.auth import AuthStore, Role
from mloop.auth import _tables as t
from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError


def test_token_lifecycle(db_url: str) -> None:
    store = AuthStore(db_url)
    store.add_user("ana")
    store.grant("ana", "fraud", "maintainer")
    token = store.create_token("ana", label="laptop")
    identity = store.authenticate(token.text)
    assert identity is not None and identity.name == "ana" and identity.role_in("fraud") == Role.MAINTAINER
    assert identity.role_in("default") is None
    assert store.authenticate(token.text[:-1] + ("A" if token.text[-1] != "A" else "B")) is None  # same prefix
    assert store.authenticate("not a token") is None and store.authenticate("") is None
    (listed,) = store.list_tokens("ana")
    assert listed.prefix == token.prefix and listed.last_used is not None and listed.revoked is None
    store.revoke_token(token.prefix)
    assert store.authenticate(token.text) is None
    with pytest.raises(NotFoundError, match="No active token"):
        store.revoke_token(token.prefix)


def test_only_a_digest_is_stored(db_url: str) -> None:
    store = AuthStore(db_url)
    store.add_user("ci", service_account=True)
    token = store.create_token("ci")
    with store.db.read() as conn:
        rows = [tuple(r) for r in conn.execute(select(t.tokens))]
    assert token.text not in repr(rows) and token.text.split("_")[-1] not in repr(rows)
    assert token.text not in repr(token) and token.text not in str(store.list_tokens())


def test_expired_and_disabled_tokens_are_refused(db_url: str) -> None:
    store = AuthStore(db_url)
    store.add_user("bob")
    short = store.create_token("bob", expires_in=timedelta(milliseconds=50))
    lasting = store.create_token("bob", expires_in=timedelta(days=30))
    time.sleep(0.1)
    assert store.authenticate(short.text) is None
    assert store.authenticate(lasting.text) is not None
    store.set_disabled("bob")
    assert store.authenticate(lasting.text) is None
    store.set_disabled("bob", False)
    assert store.authenticate(lasting.text) is not None


def test_bad_input_names_the_field(tmp_path) -> None:
    store = AuthStore(f"sqlite:///{tmp_path / 'meta.db'}")
    store.add_user("ana")
    with pytest.raises(AlreadyExistsError):
        store.add_user("ana")
    with pytest.raises(InvalidInputError, match="role: got 'owner'"):
        store.grant("ana", "default", "owner")
    with pytest.raises(InvalidInputError, match="user"):
        store.add_user("ana; drop table")
    with pytest.raises(NotFoundError, match="mloop auth users add ghost"):
        store.create_token("ghost")
    with pytest.raises(InvalidInputError, match="expires"):
        store.create_token("ana", expires_in=timedelta(0))
    store.grant("ana", "default", "viewer")
    store.grant("ana", "default", "editor")  # replaces
    assert store.user("ana").roles == {"default": "editor"}
    assert store.revoke("ana", "default") and not store.revoke("ana", "default")
