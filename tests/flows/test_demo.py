"""The demo's Pipelines step: the training flow fails at evaluate, and the resume re-runs only from there."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

import mloop.flows as flows
from mloop.config import Settings
from mloop.demo.data import ride_hailing, split_by_time
from mloop.demo.runner import DemoContext
from mloop.tracking import TrackingClient


def test_demo_pipelines_step_fails_then_resumes_from_evaluate(home: Path) -> None:
    from mloop.demo import pipelines

    settings = Settings.load(home=str(home))
    trips = ride_hailing(n_trips=3000)
    train, valid, live = split_by_time(trips)
    console = Console(record=True, width=200)
    ctx = DemoContext(home=home, console=console, client=TrackingClient(settings), trips=trips, train=train,
                      valid=valid, live=live)
    pipelines.run(ctx)
    text = console.export_text()
    assert "Step 'evaluate' failed: ConnectionError" in text
    assert "Reused 4 tasks (start, fit/0, fit/1, choose); re-ran only evaluate, register, end." in text
    run = flows.get_run(ctx.state["flow_run_id"])
    assert run.successful and run.data.version == 1 and run.data.best_name in ("ridge", "hgb-fast")
    first = flows.get_run(run.origin_run_id)
    assert first.status == "failed" and first["evaluate"].task.status == "failed"
