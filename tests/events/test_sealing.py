"""Webhook secrets at rest: a dump of the database does not reveal them, deliveries are still signed with them, a
process with another key says so instead of signing wrongly, and no API returns them; SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import sqlite3

import pytest
from sqlalchemy import select, update

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.events.query import list_deliveries
from mloop.events.sealing import SEALED
from mloop.events.signing import signature
from mloop.events.worker import DeliveryWorker
from mloop.registry import RegistryClient
from mloop.registry import _tables as t
from tests.events.conftest import SECRET
from tests.events.receiver import Receiver


def _stored(registry: RegistryClient) -> list[str]:
    with registry.db.read() as conn:
        return list(conn.execute(select(t.webhooks.c.secret)).scalars())


def _signed_with(secret: str, receiver: Receiver) -> bool:
    headers, body = receiver.requests[-1]
    return hmac.compare_digest(headers["x-mloop-signature"], signature(secret, body))


def test_a_dump_does_not_reveal_the_secret_and_deliveries_are_signed_with_it(
        settings: Settings, registry: RegistryClient, receiver: Receiver) -> None:
    registry.webhooks.add(receiver.url, SECRET, events=["model.created"])
    [stored] = _stored(registry)
    assert stored.startswith(SEALED) and SECRET not in stored
    if settings.db_url.startswith("sqlite"):  # the whole file, as a backup would copy it
        with sqlite3.connect(settings.db_url.removeprefix("sqlite:///")) as conn:
            assert SECRET not in "\n".join(conn.iterdump())
    registry.create_model("sealed")
    assert DeliveryWorker(settings, backoff=0.05).run_until_empty(timeout=20)
    assert len(receiver.requests) == 1 and _signed_with(SECRET, receiver)
    assert all(SECRET not in str(hook) for hook in registry.webhooks.list())


def test_a_secret_stored_before_sealing_is_sealed_and_still_signs(
        settings: Settings, registry: RegistryClient, receiver: Receiver) -> None:
    registry.webhooks.add(receiver.url, SECRET, events=["model.created"])
    with registry.db.write() as conn:  # as a database from before sealing holds it
        conn.execute(update(t.webhooks).values(secret=SECRET))
    registry.create_model("before")
    assert DeliveryWorker(settings, backoff=0.05).run_until_empty(timeout=20) and _signed_with(SECRET, receiver)
    assert registry.webhooks.seal_stored() == 1 and registry.webhooks.seal_stored() == 0
    assert _stored(registry)[0].startswith(SEALED)
    registry.create_model("after")
    assert DeliveryWorker(settings, backoff=0.05).run_until_empty(timeout=20) and _signed_with(SECRET, receiver)


def test_a_process_with_another_key_says_so_instead_of_signing(
        settings: Settings, registry: RegistryClient, receiver: Receiver) -> None:
    registry.webhooks.add(receiver.url, SECRET, events=["model.created"])
    registry.create_model("elsewhere")
    other = dataclasses.replace(settings, secret_key=secrets.token_hex(32))
    assert DeliveryWorker(other, backoff=0.05).run_until_empty(timeout=20)
    assert receiver.requests == []  # nothing signed with a wrong secret went out
    [dead] = list_deliveries(registry.db, "failed")
    assert "MLOOP_SECRET_KEY" in dead.last_error and SECRET not in dead.last_error


def test_the_key_setting_is_checked_and_never_shown(tmp_path) -> None:
    key = secrets.token_hex(32)
    settings = Settings.load(home=str(tmp_path), secret_key=key)
    assert key not in repr(settings)
    with pytest.raises(InvalidInputError) as refused:
        registry = RegistryClient(Settings.load(home=str(tmp_path / "b"), secret_key="short",
                                                webhook_allow_hosts="127.0.0.1"))
        registry.webhooks.add("http://127.0.0.1:9/hook", SECRET)
    assert refused.value.field == "secret_key" and "short" not in str(refused.value)
