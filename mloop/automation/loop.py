"""The long-running side of the runtime: a tick every interval, in a thread of ``mloop scheduler`` (or the
foreground of ``mloop automation run``). Every tick is restart-safe, so the loop keeps no state of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mloop.config import Settings
from mloop.errors import MloopError

__all__ = ["report_lines", "start_background", "tick_and_report"]


def report_lines(report: Any) -> list[str]:
    """One line per new event, per firing run and per trigger that could not be observed."""
    lines = [f"automation: event {e['kind']} for {e['rule']}: {e['reason']}" for e in report.events]
    lines += [f"automation: firing {r['id'][:8]} {r['state']} {r['reason']}".rstrip() for r in report.ran]
    return lines + [f"automation: error: {e}" for e in report.errors]


def tick_and_report(echo: Callable[[str], Any], settings: Settings | None = None, now: datetime | None = None) -> None:
    """One tick (at ``now``, default the clock); what it did goes to ``echo``; a store error is reported, never
    raised (the loop goes on)."""
    from mloop.automation.runtime import tick

    try:
        for line in report_lines(tick(now=now, settings=settings)):
            echo(line)
    except MloopError as exc:
        echo(f"automation: tick failed: {exc.message}")


def start_background(echo: Callable[[str], Any], interval: float = 60.0,
                     settings: Settings | None = None) -> threading.Event:
    """Tick every ``interval`` seconds in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            tick_and_report(echo, settings)
            stop.wait(interval)

    threading.Thread(target=loop, name="mloop-automation", daemon=True).start()
    return stop
