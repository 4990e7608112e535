"""Delivery workers against a real receiver: retries with backoff then a dead letter, two workers at once, and a
server killed with kill -9 in the middle of a delivery; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from mloop.config import Settings
from mloop.events.query import list_deliveries, retry
from mloop.events.worker import DeliveryWorker
from mloop.registry import RegistryClient
from tests.conftest import free_port
from tests.events.conftest import ROOT, SECRET, cli_env
from tests.events.receiver import Receiver


def test_a_failing_receiver_gets_retries_with_backoff_then_a_dead_letter(settings: Settings, registry: RegistryClient,
                                                                      receiver: Receiver) -> None:
    receiver.status = 500
    hook = registry.webhooks.add(receiver.url, SECRET, events=["model.created"])
    registry.create_model("flaky")
    worker = DeliveryWorker(settings, max_attempts=3, backoff=0.2)
    assert worker.run_until_empty(timeout=20)
    assert [h["x-mloop-attempt"] for h, _ in receiver.requests] == ["1", "2", "3"]
    assert len(receiver.header_counts("x-mloop-delivery")) == 1  # one delivery, attempted three times
    gaps = [later - earlier for earlier, later in zip(receiver.times, receiver.times[1:], strict=False)]
    assert gaps[0] >= 0.2 * 0.5 and gaps[1] >= 0.4 * 0.5  # exponential, jittered within [50%, 100%]
    [dead] = list_deliveries(registry.db, "failed")
    assert (dead.event, dead.attempts, dead.last_error) == ("model.created", 3, "HTTP 500")
    log = list(reversed(registry.webhooks.deliveries(hook["id"])))
    assert [(d.attempt, d.status_code, d.ok) for d in log] == [(1, 500, False), (2, 500, False), (3, 500, False)]
    assert all(d.duration_ms > 0 for d in log)
    # fixed receiver, retried by hand: delivered once, and never again
    receiver.status = 204
    retry(registry.db, dead.id)
    assert worker.run_until_empty(timeout=20) and worker.run_once() == 0
    assert [h["x-mloop-attempt"] for h, _ in receiver.requests][-1] == "1" and len(receiver.requests) == 4
    assert [d.state for d in list_deliveries(registry.db)] == ["delivered"]


def test_a_refusing_receiver_is_dead_lettered_at_once_and_keeps_later_events_in_order(
        settings: Settings, registry: RegistryClient, receiver: Receiver) -> None:
    receiver.status = 410  # a 4xx other than 429 will not change by asking again
    registry.webhooks.add(receiver.url, SECRET, events=["model.created"])
    for name in ("first", "second", "third"):
        registry.create_model(name)
    assert DeliveryWorker(settings, max_attempts=5, backoff=0.05).run_until_empty(timeout=20)
    assert [b["target"] for b in receiver.bodies()] == ["models/first", "models/second", "models/third"]
    assert [(d.state, d.attempts) for d in list_deliveries(registry.db)] == [("dead", 1)] * 3


def test_a_redirect_is_never_followed_to_another_address(settings: Settings, registry: RegistryClient,
                                                          receiver: Receiver) -> None:
    # the exploit: a receiver that passed the address check redirects the POST to an address it could not name
    internal = Receiver()
    try:
        receiver.status, receiver.location = 307, internal.url
        registry.webhooks.add(receiver.url, SECRET, events=["model.created"])
        registry.create_model("redirected")
        assert DeliveryWorker(settings, backoff=0.05).run_until_empty(timeout=20)
        assert internal.requests == [] and len(receiver.requests) == 1
        [dead] = list_deliveries(registry.db, "failed")
        assert (dead.attempts, dead.last_error) == (1, "HTTP 307")
    finally:
        internal.close()


def test_two_workers_at_once_deliver_each_event_once(settings: Settings, registry: RegistryClient) -> None:
    slow = Receiver(delay=0.02)
    try:
        hooks = [registry.webhooks.add(slow.url, SECRET, events=["model.created"])["id"] for _ in range(3)]
        for i in range(10):
            registry.create_model(f"m{i:02d}")
        # two workers, each with its own connections and lease owner, racing for the same 30 deliveries
        workers = [DeliveryWorker(settings, batch=2) for _ in range(2)]
        done: list[bool] = []
        threads = [threading.Thread(target=lambda w=w: done.append(w.run_until_empty(timeout=60))) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert done == [True, True] and len(slow.requests) == 30
        assert all(w.attempted > 0 for w in workers) and sum(w.attempted for w in workers) == 30
        assert set(slow.header_counts("x-mloop-delivery").values()) == {1}
        # each webhook got its ten events once each, in the order they happened
        deliveries = {d.delivery_id: d for d in list_deliveries(registry.db)}
        by_hook: dict[int, list[str]] = {}
        for headers, _ in slow.requests:
            found = deliveries[headers["x-mloop-delivery"]]
            by_hook.setdefault(found.webhook_id, []).append(found.subject or "")
        assert all(by_hook[hook] == [f"m{i:02d}" for i in range(10)] for hook in hooks)
        assert {d.state for d in deliveries.values()} == {"delivered"}
    finally:
        slow.close()


def test_a_server_killed_during_delivery_loses_no_event(settings: Settings, registry: RegistryClient) -> None:
    slow = Receiver(delay=0.3)  # a delivery is mid-flight most of the time
    try:
        registry.webhooks.add(slow.url, SECRET, events=["model.created"])
        for i in range(5):
            registry.create_model(f"k{i}")
        server = _server(settings)
        try:
            assert slow.wait_for(2, timeout=40), "the server delivered nothing"
        finally:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(10)
        recorded = {d.delivery_id for d in list_deliveries(registry.db, "delivered")}
        assert len(recorded) < 5, "the kill came too late to interrupt anything"
        restarted = _server(settings)
        try:
            deadline = time.monotonic() + 40
            while list_deliveries(registry.db, "pending") and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            restarted.terminate()
            restarted.wait(20)
        counts = slow.header_counts("x-mloop-delivery")
        assert [d.state for d in list_deliveries(registry.db)] == ["delivered"] * 5  # none lost
        assert len(counts) == 5
        assert all(counts[d] == 1 for d in recorded)  # answered 2xx and recorded: never sent again
        assert sum(counts.values()) <= 5 + 1  # at most the one in flight at the kill came twice (same delivery id)
    finally:
        slow.close()


def _server(settings: Settings) -> subprocess.Popen[bytes]:
    """A real `mloop server` whose worker's lease is short, so a killed one's deliveries are taken over soon."""
    return subprocess.Popen([sys.executable, "-m", "mloop", "server", "--port", str(free_port())],
                            env=cli_env(settings, MLOOP_EVENTS_LEASE_SECONDS="1.5"), cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
