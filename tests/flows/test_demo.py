"""The demo's training pipeline: the flow fails at evaluate, the resume re-runs only from there, and the
tracking and registry steps show what it produced; a second demo in the same home sees only its own runs."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

import mloop.flows as flows
from mloop.config import Settings
from mloop.demo.data import ride_hailing, split_by_time
from mloop.demo.runner import DemoContext
from mloop.registry import registry_for
from mloop.tracking import TrackingClient


def _context(home: Path) -> DemoContext:
    settings = Settings.load(home=str(home), tracking_uri="")
    trips = ride_hailing(n_trips=3000)
    train, valid, live = split_by_time(trips)
    return DemoContext(home=Path(settings.home), console=Console(record=True, width=200),
                       client=TrackingClient(settings), trips=trips, train=train, valid=valid, live=live)


def test_demo_training_flow_fails_resumes_and_feeds_tracking_and_registry(home: Path) -> None:
    from mloop.demo import pipelines, registry, tracking

    versions_per_demo = []
    for _ in range(2):  # the second demo, in the same home, must not trip over the first one's runs
        ctx = _context(home)
        pipelines.run(ctx)
        tracking.run(ctx)
        registry.run(ctx)
        text = ctx.console.export_text()
        assert "Step 'evaluate' failed: ConnectionError" in text
        assert ("Reused 6 tasks (start, fit/0, fit/1, fit/2, fit/3, choose); re-ran only evaluate, register, end."
                in text)
        run = flows.get_run(ctx.state["flow_run_id"], settings=ctx.settings)
        first = flows.get_run(run.origin_run_id, settings=ctx.settings)
        assert run.successful and first.status == "failed" and first["evaluate"].task.status == "failed"
        assert len(run.data.versions) == 3 and run.data.best_name in run.data.versions

        ranking = text.split("Best run:")[0].split("best first")[1]
        names = [line.split()[1] for line in ranking.splitlines() if line.startswith("│")]
        assert sorted(names) == ["forest", "hgb-fast", "hgb-slow", "ridge"]  # this demo's four runs only
        assert ctx.state["best_run_id"] in ctx.state["models"]
        registry_client = registry_for(ctx.settings)
        for name, number in run.data.versions.items():
            version = registry_client.get_version("trip-duration", number)
            assert version.run_id in ctx.state["models"] and version.tags["run_name"] == name
            # the version's run is the candidate's run, a child of its fit task in the flow that trained it
            assert registry_client.lineage("trip-duration", number)["flow"]["run_id"] == first.id
        assert "rule 'trip-duration-champion': selected trip-duration v" in text
        versions_per_demo.append(sorted(run.data.versions.values()))
    assert versions_per_demo == [[1, 2, 3], [4, 5, 6]]
