"""The demo's tracking and registry steps, twice in the same home: the second demo sees only its own runs."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from mloop.config import Settings
from mloop.demo import registry as registry_step
from mloop.demo import tracking as tracking_step
from mloop.demo.data import ride_hailing, split_by_time
from mloop.demo.runner import DemoContext
from mloop.registry import registry_for
from mloop.tracking import TrackingClient


def test_the_demo_can_run_again_in_the_same_home(home: Path) -> None:
    settings = Settings.load(home=str(home), tracking_uri="")
    trips = ride_hailing(n_trips=3000)
    train, valid, live = split_by_time(trips)
    registered = []
    for _ in range(2):
        console = Console(record=True, width=200)
        ctx = DemoContext(home=Path(settings.home), console=console, client=TrackingClient(settings), trips=trips,
                          train=train, valid=valid, live=live)
        tracking_step.run(ctx)
        registry_step.run(ctx)
        ranking = console.export_text().split("Best run:")[0]
        for name in ("ridge", "forest", "hgb-fast", "hgb-slow"):  # this demo's four runs, not the earlier ones
            assert [line.split()[1] for line in ranking.splitlines() if line.startswith("│")].count(name) == 1, ranking
        assert ctx.state["best_run_id"] in ctx.state["models"]
        registered.append(sorted(ctx.state["models"]))
    versions = sorted(registry_for(settings).list_versions("trip-duration"), key=lambda v: v.version)
    assert [v.version for v in versions] == list(range(1, 2 * registry_step.TOP + 1))
    assert {v.run_id for v in versions[: registry_step.TOP]} <= set(registered[0])
    assert {v.run_id for v in versions[registry_step.TOP:]} <= set(registered[1])
