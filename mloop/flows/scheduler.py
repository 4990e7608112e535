"""Start flows on their cron schedules: ``mloop scheduler flows/*.py`` (long-running) or ``--once``.

Each due start is claimed in the metadata database first (one row per flow and minute), so two schedulers never
start the same flow twice for the same minute; the row then records the run's id.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError
from mloop.flows.cron import CronSchedule


@dataclass(frozen=True)
class ScheduledFlow:
    name: str
    file: str
    cron: CronSchedule


def scheduled_flows(files: list[str], *, warn: Callable[[str], Any] | None = None) -> list[ScheduledFlow]:
    """The flows among ``files`` (or the .py files of folders) that declare a ``@schedule``.

    A folder holds helpers and packages too: files without flows are skipped, and a file that fails to import is
    reported through ``warn`` and skipped, so one broken file does not stop the others' schedules.
    """
    found = []
    for item in files:
        path = Path(item)
        candidates = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for file in candidates:
            if not file.is_file():
                raise InvalidInputError(field="flows", value=str(file), expected="flow files or folders of them")
            found.extend(_scheduled_in(file, warn or _stderr))
    return found


def _scheduled_in(file: Path, warn: Callable[[str], Any]) -> list[ScheduledFlow]:
    from mloop.flows.task import flow_classes

    try:
        classes = flow_classes(str(file))
    except MloopError as exc:
        warn(f"scheduler: skipped {file}: {exc.message}")
        return []
    # vars(): the class's own @schedule; a subclass of a scheduled flow is not started on its parent's schedule
    return [ScheduledFlow(flow.__name__, str(file.resolve()), vars(flow)["_mloop_schedule"]) for flow in classes
            if vars(flow).get("_mloop_schedule") is not None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def tick(flows: list[ScheduledFlow], now: datetime, *, settings: Settings | None = None,
         launch: Callable[[ScheduledFlow, int], Any] | None = None) -> list[tuple[ScheduledFlow, Any]]:
    """Start every flow due at ``now``'s minute that no scheduler started yet; returns what was launched."""
    from mloop.flows.runtime import open_flow_repo

    settings = settings or Settings.load()
    repo = open_flow_repo(settings)
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    due = int(minute.timestamp() * 1000)
    started = []
    for flow in flows:
        if flow.cron.matches(minute) and repo.claim_schedule_start(flow.name, due, str(flow.cron), flow.file):
            started.append((flow, (launch or _launch)(flow, due)))
    return started


def _launch(flow: ScheduledFlow, due: int) -> subprocess.Popen[bytes]:
    # --flow: the file may define several flows, each scheduled on its own
    return subprocess.Popen([sys.executable, "-m", "mloop", "flow", "run", flow.file, "--flow", flow.name,
                             "--tag", "scheduled", "--schedule-due", str(due)])


def serve(files: list[str], *, once: bool = False, now: datetime | None = None, echo: Any = print,
          warn: Callable[[str], Any] | None = None) -> int:
    """Run the scheduler: every minute start the due flows; ``once`` runs one tick and waits for its runs."""
    flows = scheduled_flows(files, warn=warn)
    echo(f"scheduler: {len(flows)} scheduled flow(s): " + ", ".join(f"{f.name} [{f.cron}]" for f in flows))
    children: list[subprocess.Popen[bytes]] = []
    _start_automation(once, echo, now)
    _start_monitors(once, echo, now)
    while True:
        moment = now or datetime.now(UTC)
        for flow, proc in tick(flows, moment):
            echo(f"scheduler: started {flow.name} for {moment:%Y-%m-%d %H:%M} UTC (pid {proc.pid})")
            children.append(proc)
        children = [c for c in children if c.poll() is None] if not once else children
        if once:
            return max([c.wait() for c in children] or [0])
        time.sleep(60 - datetime.now(UTC).second + 0.5)


def _start_monitors(once: bool, echo: Any, now: datetime | None) -> None:
    """Monitors run beside the flows as ``mloop server`` runs them (every ``monitor_every_seconds``, on a thread
    of their own); their leases let a server and a scheduler share them."""
    if os.environ.get("MLOOP_SCHEDULER_MONITORS", "1") == "0":
        return
    from mloop.monitoring.schedule import MonitorLoop

    loop = MonitorLoop(Settings.load())
    if loop.settings.monitor_every_seconds <= 0:  # turned off
        return
    if once:
        echo(f"monitors: {loop.tick(now=now)} window(s) computed")
    else:
        loop.start()


def _start_automation(once: bool, echo: Any, now: datetime | None) -> None:
    """Automation rules tick beside the flows (a thread, so a long retraining never delays a scheduled start)."""
    if os.environ.get("MLOOP_SCHEDULER_AUTOMATION", "1") == "0":
        return
    from mloop.automation.loop import start_background, tick_and_report

    if once:
        tick_and_report(echo, now=now)
    else:
        start_background(echo)
