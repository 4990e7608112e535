"""The demo's validation step on a small data set: schema, corrupted batch, drift report saved as HTML."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from mloop.config import Settings
from mloop.demo import validation
from mloop.demo.data import ride_hailing, split_by_time
from mloop.demo.runner import DemoContext
from mloop.tracking import TrackingClient
from mloop.validation.drift_detection.report import plotly_js


def _run_step(home: Path, n_trips: int) -> tuple[DemoContext, str]:
    """The demo's validation step on ``n_trips`` generated trips; its context and what it printed."""
    settings = Settings.load(home=str(home), tracking_uri="")
    trips = ride_hailing(n_trips=n_trips)
    train, valid, live = split_by_time(trips)
    out = io.StringIO()
    ctx = DemoContext(home=Path(settings.home), console=Console(file=out, width=200), client=TrackingClient(settings),
                      trips=trips, train=train, valid=valid, live=live)
    validation.run(ctx)
    return ctx, out.getvalue()


def test_demo_step_shows_the_failure_and_writes_the_report(home: Path) -> None:
    ctx, text = _run_step(home, n_trips=6000)
    assert "outside the range [0, 23]; e.g. row 17: 77" in text
    assert "distance_km: column is missing" in text and "'hail'" in text
    report = ctx.home / "validation" / "drift_train_vs_last_month.html"
    assert report.stat().st_size < len(plotly_js()) + 500_000  # the inlined bundle plus the data
    assert {"distance_km", "weather"} <= set(ctx.state["drift"].drifted_columns)
    assert "zone_id" not in ctx.state["drift"].drifted_columns


def test_demo_step_runs_at_the_smallest_trip_count_the_cli_accepts(home: Path) -> None:
    """``mloop demo --trips 2000`` leaves fewer than 405 validation trips; the corrupted rows must still exist."""
    _, text = _run_step(home, n_trips=2000)
    assert "outside the range [0, 23]; e.g. row 17: 77" in text
    assert "'hail'" in text
