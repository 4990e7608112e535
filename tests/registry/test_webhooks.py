"""Webhooks against a real HTTP receiver on 127.0.0.1: HMAC signature, retries with backoff, delivery log; the
process that made a change delivers its events itself (the outbox keeps them for workers, see tests/events)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.registry import RegistryClient
from mloop.registry.webhooks import signature
from tests.events.receiver import Receiver
from tests.registry.conftest import log_version

SECRET = "s3cret-value"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The registry's settings; the receivers run on this machine, which webhooks may reach only when allowed."""
    return Settings.load(home=str(tmp_path / "h"), db_url=db_url, user="alice", webhook_allow_hosts="127.0.0.1")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(fail_first=2)
    yield found
    found.close()


def test_events_are_signed_retried_and_logged(registry: RegistryClient, tracking, pipeline, frame,
                                              receiver: Receiver) -> None:
    registry.webhooks.backoff = 0.05
    hook = registry.webhooks.add(receiver.url, SECRET, events=["version.created", "alias.set"])
    log_version(tracking, pipeline, frame)
    registry.set_alias("eta", "champion", 1)
    assert registry.webhooks.wait(20)
    bodies = [json.loads(body) for _, body in receiver.requests]
    # the first event failed twice (HTTP 500) and was delivered on the third attempt
    assert [b["event"] for b in bodies] == ["version.created"] * 3 + ["alias.set"]
    for headers, body in receiver.requests:
        assert headers["x-mloop-signature"] == signature(SECRET, body)
    assert bodies[-1]["after"] == {"version": 1} and bodies[-1]["model"] == "eta"
    log = list(reversed(registry.webhooks.deliveries(hook["id"])))
    assert [(d.event, d.attempt, d.status_code, d.ok) for d in log] == [
        ("version.created", 1, 500, False), ("version.created", 2, 500, False), ("version.created", 3, 204, True),
        ("alias.set", 1, 204, True)]
    assert len({d.delivery_id for d in log[:3]}) == 1
    # the retries resend the same delivery: same id, same event id, same bytes; a receiver dedupes on them
    assert len({(h["x-mloop-delivery"], h["x-mloop-event-id"], b) for h, b in receiver.requests[:3]}) == 1
    assert [h["x-mloop-attempt"] for h, _ in receiver.requests] == ["1", "2", "3", "1"]


def test_unreachable_receiver_is_logged_after_the_last_attempt(registry: RegistryClient, tracking, pipeline,
                                                               frame) -> None:
    from tests.conftest import free_port

    registry.webhooks.backoff = 0.01
    registry.webhooks.max_attempts = 2
    hook = registry.webhooks.add(f"http://127.0.0.1:{free_port()}/nobody", SECRET, events=["*"])
    registry.create_model("quiet")
    assert registry.webhooks.wait(20)
    log = registry.webhooks.deliveries(hook["id"])
    assert [(d.attempt, d.ok) for d in log] == [(2, False), (1, False)]
    assert "Connect" in log[0].error


def test_webhook_input_is_checked(registry: RegistryClient) -> None:
    with pytest.raises(InvalidInputError, match="url"):
        registry.webhooks.add("ftp://x", SECRET)
    with pytest.raises(InvalidInputError, match="secret"):
        registry.webhooks.add("http://127.0.0.1:1/x", "short")
    with pytest.raises(InvalidInputError, match="events"):
        registry.webhooks.add("http://127.0.0.1:1/x", SECRET, events=["version.exploded"])


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook",
                                 "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest",
                                 "http://10.0.0.7/hook", "http://[::ffff:127.0.0.1]:{port}/hook"])
def test_webhooks_to_this_machine_or_private_networks_are_refused(registry: RegistryClient, receiver: Receiver,
                                                                 url: str, tmp_path: Path) -> None:
    closed = RegistryClient(Settings.load(home=str(tmp_path / "other"), db_url=registry.settings.db_url))  # no list
    port = receiver.server.server_address[1]
    with pytest.raises(InvalidInputError, match="webhook_allow_hosts") as refused:
        closed.webhooks.add(url.format(port=port), SECRET)
    assert refused.value.field == "url"


def test_delivery_checks_the_address_again(registry: RegistryClient, tracking, pipeline, frame,
                                           receiver: Receiver) -> None:
    # allowed when added; the allow list is gone when the event is delivered: nothing reaches the receiver
    hook = registry.webhooks.add(receiver.url, SECRET, events=["*"])
    registry.settings = Settings.load(home=registry.settings.home, db_url=registry.settings.db_url)
    registry.webhooks.max_attempts = 3
    registry.create_model("watched")
    assert registry.webhooks.wait(20)
    log = registry.webhooks.deliveries(hook["id"])
    assert receiver.requests == []
    assert [(d.attempt, d.ok, d.status_code) for d in log] == [(1, False, None)]  # refused: not retried
    assert log[0].error.startswith("refused:") and "127.0.0.1" in log[0].error
