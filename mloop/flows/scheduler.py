"""Start flows on their cron schedules: ``mloop scheduler flows/*.py`` (long-running) or ``--once``.

Each due start is claimed in the metadata database first (one row per flow and minute), so two schedulers never
start the same flow twice for the same minute; the row then records the run's id.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.flows.cron import CronSchedule


@dataclass(frozen=True)
class ScheduledFlow:
    name: str
    file: str
    cron: CronSchedule


def scheduled_flows(files: list[str]) -> list[ScheduledFlow]:
    """The flows among ``files`` (or the .py files of folders) that declare a ``@schedule``."""
    from mloop.flows.task import load_flow

    found = []
    for item in files:
        path = Path(item)
        candidates = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for file in candidates:
            if not file.is_file():
                raise InvalidInputError(field="flows", value=str(file), expected="flow files or folders of them")
            flow = load_flow(str(file))
            cron = getattr(flow, "_mloop_schedule", None)
            if cron is not None:
                found.append(ScheduledFlow(flow.__name__, str(file.resolve()), cron))
    return found


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
    return subprocess.Popen([sys.executable, "-m", "mloop", "flow", "run", flow.file, "--tag", "scheduled",
                             "--schedule-due", str(due)])


def serve(files: list[str], *, once: bool = False, now: datetime | None = None, echo: Any = print) -> int:
    """Run the scheduler: every minute start the due flows; ``once`` runs one tick and waits for its runs."""
    flows = scheduled_flows(files)
    echo(f"scheduler: {len(flows)} scheduled flow(s): " + ", ".join(f"{f.name} [{f.cron}]" for f in flows))
    children: list[subprocess.Popen[bytes]] = []
    while True:
        moment = now or datetime.now(UTC)
        for flow, proc in tick(flows, moment):
            echo(f"scheduler: started {flow.name} for {moment:%Y-%m-%d %H:%M} UTC (pid {proc.pid})")
            children.append(proc)
        children = [c for c in children if c.poll() is None] if not once else children
        if once:
            return max([c.wait() for c in children] or [0])
        time.sleep(60 - datetime.now(UTC).second + 0.5)
