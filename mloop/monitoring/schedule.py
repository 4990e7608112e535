"""Monitors on a clock: ``mloop server`` and ``mloop scheduler`` run every monitor each ``monitor_every_seconds``
on a thread.

Any number of servers may do so at once: a monitor's lease (``run_monitor``) lets one run it at a time and the
others skip it until the next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from mloop.config import Settings
from mloop.errors import ConflictError, MloopError

log = logging.getLogger("mloop.monitoring")


class MonitorLoop:
    """``MonitorLoop(settings).start()`` returns the function that stops it (waiting for a run in progress)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()

    def start(self) -> Callable[[], None]:
        if self.settings.monitor_every_seconds <= 0:
            return lambda: None
        thread = threading.Thread(target=self._loop, name="mloop-monitors", daemon=True)
        thread.start()

        def stop() -> None:
            self._stop.set()
            thread.join(30)

        return stop

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.monitor_every_seconds):
            self.tick()

    def tick(self, now: datetime | None = None) -> int:
        """Run every monitor once (as of ``now``, default the clock); returns how many windows they computed. A
        failing monitor is logged and the others still run."""
        from mloop.monitoring import list_monitors, run_monitor

        windows = 0
        for found in list_monitors(self.settings):
            if self._stop.is_set():
                break
            try:
                windows += run_monitor(found["name"], now=now, settings=self.settings).windows
            except ConflictError:
                continue  # another process runs it now
            except MloopError as exc:
                log.warning("monitor %s: %s", found["name"], exc)
            except Exception:  # a bug in one monitor must not stop the others, nor the server
                log.exception("monitor %s failed", found["name"])
        return windows
