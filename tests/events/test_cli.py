"""A CLI change in a process that exits at once still reaches the receiver, exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mloop.cli import _register, app
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.events.query import list_deliveries
from mloop.events.signing import signature
from mloop.registry import RegistryClient
from tests.events.conftest import SECRET, cli_env, mloop_cli
from tests.events.receiver import Receiver


def test_cli_alias_change_reaches_the_receiver_exactly_once(settings: Settings, registry: RegistryClient,
                                                            version: int, receiver: Receiver) -> None:
    registry.webhooks.add(receiver.url, SECRET, events=["alias.set"])
    # 1. the process flushes its own delivery before it exits
    flushed = mloop_cli(settings, "models", "alias", "eta", "champion", str(version), MLOOP_USER="bob")
    assert flushed.returncode == 0, flushed.stderr
    assert len(receiver.requests) == 1
    # 2. with the flush off the process exits at once, and its event waits in the outbox for a worker
    left = mloop_cli(settings, "models", "alias", "eta", "challenger", str(version), MLOOP_EVENTS_FLUSH_SECONDS="0")
    assert left.returncode == 0 and len(receiver.requests) == 1, left.stderr
    assert [(d.event, d.state) for d in list_deliveries(registry.db, "pending")] == [("alias.set", "pending")]
    drained = mloop_cli(settings, "events", "deliver", "--until-empty", "--timeout", "20")
    assert drained.returncode == 0 and "nothing pending" in drained.stdout, drained.stdout + drained.stderr
    # each event arrived once: the worker did not send the flushed one again
    events = receiver.bodies()
    assert [(e["event"], e["target"], e["after"]) for e in events] == [
        ("alias.set", "models/eta/aliases/champion", {"version": 1}),
        ("alias.set", "models/eta/aliases/challenger", {"version": 1})]
    assert events[0]["actor"] == "bob"
    assert set(receiver.header_counts("x-mloop-delivery").values()) == {1}
    for headers, body in receiver.requests:
        assert headers["x-mloop-event-id"] == json.loads(body)["event_id"] and headers["x-mloop-event"] == "alias.set"
        assert headers["x-mloop-signature"] == signature(SECRET, body)
        assert headers["x-mloop-signature-timestamped"] == signature(SECRET, body, int(headers["x-mloop-timestamp"]))
    assert [d.state for d in list_deliveries(registry.db)] == ["delivered", "delivered"]


def test_events_commands_list_retry_and_refuse_bad_input(settings: Settings, registry: RegistryClient,
                                                        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in cli_env(settings).items():
        monkeypatch.setenv(name, value)
    registry.webhooks.add(receiver.url, SECRET, events=["model.created"])
    registry.create_model("listed")
    listed = _invoke("events", "list", "--pending", "--home", settings.home)
    assert listed.exit_code == 0 and "model.created" in listed.output and "pending" in listed.output
    both = _invoke("events", "list", "--pending", "--failed", "--home", settings.home)
    assert isinstance(both.exception, InvalidInputError) and both.exception.field == "--pending/--failed"
    unknown = _invoke("events", "retry", "999", "--home", settings.home)
    assert isinstance(unknown.exception, NotFoundError) and "No delivery 999" in unknown.exception.message
    delivered = _invoke("events", "deliver", "--once", "--home", settings.home)
    assert delivered.exit_code == 0 and "1 attempts made" in delivered.output and len(receiver.requests) == 1
    again = _invoke("events", "retry", str(list_deliveries(registry.db)[0].id), "--home", settings.home)
    assert isinstance(again.exception, ConflictError)  # delivered already: a retry would send it twice
    registry.create_model("waiting")  # pending: kept by a purge, whatever its age
    purged = _invoke("events", "purge", "--older-than", "0s", "--home", settings.home)
    assert purged.exit_code == 0 and "purged 1 events" in purged.output
    assert [(d.subject, d.state) for d in list_deliveries(registry.db)] == [("waiting", "pending")]
    assert registry.audit(model="listed")[0].action == "model.created"  # the history stays in the audit log


def _invoke(*args: str) -> Result:
    _register()
    from mloop.cli._app import console

    # the console is made once per process: a test before this one may have left it 80 columns wide
    width, console.width = console._width, 200
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        console.width = width


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: these tests start processes, which cost seconds; the worker tests cover PostgreSQL."""
    return f"sqlite:///{tmp_path / 'meta.db'}"
