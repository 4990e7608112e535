"""Alert events go through the events outbox: a monitoring process killed mid-run (at a failpoint between two
batches of windows, then with kill -9 at a time and while delivering) loses none, and a receiver that answered 2xx
never gets one twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from mloop.registry import registry_for
from tests.events.conftest import ROOT, SECRET, cli_env, mloop_cli
from tests.events.receiver import Receiver
from tests.monitoring.conftest import T0, write_predictions

WINDOWS, PER_WINDOW = 22, 500
SLOW = [(3, 6), (10, 13), (17, 20)]  # three slow episodes: [first, end) windows
# A killed process's claimed delivery waits out its lease before another process sends it: a short lease (the
# setting users have too) keeps that wait to seconds; an attempt (at most half the lease) still outlasts the
# receiver's delay many times over.
LEASE = {"MLOOP_EVENTS_LEASE_SECONDS": "5"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: the outbox's own tests cover PostgreSQL; this one is about the monitor's part."""
    return Settings.load(home=str(tmp_path / "h"), webhook_allow_hosts="127.0.0.1")


def slow_traffic() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    w = np.repeat(np.arange(WINDOWS), PER_WINDOW)
    slow = np.zeros(len(w), bool)
    for first, end in SLOW:
        slow |= (w >= first) & (w < end)
    frame = pd.DataFrame({"time": pd.Timestamp(T0) + pd.to_timedelta(w * 300 + rng.uniform(0, 299, len(w)),
                                                                         unit="s"),
                          "km": rng.gamma(2.0, 3.0, len(w)), "output": rng.normal(20, 4, len(w)),
                          "latency_ms": np.where(slow, 300.0, 10.0) + rng.random(len(w))})
    frame["id"] = [f"s{i}-0" for i in range(len(frame))]
    frame["version"], frame["role"] = "1", "primary"
    return frame.sort_values("time", ignore_index=True)


def _run_and_kill(settings: Settings, receiver: Receiver, after_seconds: float | None) -> None:
    """``mloop monitor run`` killed with SIGKILL after ``after_seconds``, or as soon as the receiver hears from it."""
    process = subprocess.Popen([sys.executable, "-m", "mloop", "monitor", "run"], cwd=str(ROOT),
                               env=cli_env(settings, **LEASE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    heard = len(receiver.requests)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if (after_seconds is None and len(receiver.requests) > heard) or \
                (after_seconds is not None and time.monotonic() > deadline - 120 + after_seconds):
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(30)


def test_alerts_reach_the_receiver_once_each_through_kills(settings: Settings) -> None:
    receiver = Receiver(delay=0.3)
    try:
        registry_for(settings).webhooks.add(receiver.url, SECRET, events=["alert.firing", "alert.resolved"])
        write_predictions(settings, "eta", slow_traffic(), ["km"])
        assert mloop_cli(settings, "monitor", "create", "eta-5m", "--model", "eta", "--window", "5m",
                         "--start", T0.isoformat(), **LEASE).returncode == 0
        rules = Path(settings.home) / "rules.yaml"
        rules.write_text("rules:\n  - {name: slow, monitor: eta-5m, metric: latency_p99, above: 100, for: 2}\n")
        assert mloop_cli(settings, "alerts", "apply", str(rules), **LEASE).returncode == 0

        # killed mid-run, between two batches of windows: some windows stored, the watermark short of the end
        crashed = mloop_cli(settings, "monitor", "run", timeout=180, MLOOP_FAILPOINT="monitor.after_batch", **LEASE)
        assert crashed.returncode == 137, crashed.stderr
        from mloop.monitoring import series

        stored = series("eta-5m", "rows", settings=settings)
        assert 0 < len(stored) < WINDOWS and receiver.requests == []  # mid-run, before any alert was judged
        _run_and_kill(settings, receiver, after_seconds=1.5)  # most likely while it computes windows
        _run_and_kill(settings, receiver, after_seconds=None)  # while it delivers its first alert
        finished = mloop_cli(settings, "monitor", "run", timeout=180, **LEASE)
        assert finished.returncode == 0, finished.stderr
        assert mloop_cli(settings, "events", "deliver", "--until-empty", timeout=180, **LEASE).returncode == 0

        bodies = receiver.bodies()
        first = {b["event_id"]: b for b in bodies}
        expected = {("alert.firing", first_w + 1) for first_w, _ in SLOW} | {("alert.resolved", end) for _, end in SLOW}
        step = 300_000
        got = {(b["event"], (b["window"] - int(T0.timestamp() * 1000)) // step) for b in first.values()}
        assert got == expected and len(first) == len(expected)
        # a resend can only be the delivery that was in flight when a process died: same delivery id, same bytes
        for event_id in first:
            copies = {(h["x-mloop-delivery"], body) for h, body in receiver.requests
                      if h["x-mloop-event-id"] == event_id}
            assert len(copies) == 1, copies
    finally:
        receiver.close()
