"""The demo's feature-store step on a small data set."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from mloop.config import Settings
from mloop.demo import features
from mloop.demo.data import ride_hailing, split_by_time
from mloop.demo.runner import DemoContext
from mloop.tracking import TrackingClient


def test_feature_store_step(home: Path) -> None:
    trips = ride_hailing(n_trips=4000)
    train, valid, live = split_by_time(trips)
    console = Console(record=True, width=120)
    ctx = DemoContext(home=home, console=console, client=TrackingClient(Settings.load(home=str(home))),
                      trips=trips, train=train, valid=valid, live=live)
    features.run(ctx)
    text = console.export_text()
    assert "6 to apply" in text and "materialized zone_daily v1" in text
    assert ctx.state["feature_store"]["training_rows"] == len(train)
    assert "present" in text and "expired" in text
