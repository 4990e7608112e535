"""The demo's steps, in the order of the loop; each capability adds one step."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from mloop.config import Settings
from mloop.tracking import TrackingClient


@dataclass
class DemoContext:
    """What the steps share: where things go, the data, and each step's results in ``state``."""

    home: Path
    console: Console
    client: TrackingClient
    trips: pd.DataFrame
    train: pd.DataFrame
    valid: pd.DataFrame
    live: pd.DataFrame
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.client.settings


def _steps() -> list[tuple[str, Callable[[DemoContext], None]]]:
    from mloop.demo import continuous, features, pipelines, registry, serving, tracking, validation

    return [
        ("Training pipeline", pipelines.run),
        ("Experiment tracking", tracking.run),
        ("Model registry", registry.run),
        ("Data validation and drift", validation.run),
        ("Feature store", features.run),
        ("Serving", serving.run),
        ("Continuous training", continuous.run),
    ]


def run_demo(home: Path, console: Console, n_trips: int = 60_000) -> DemoContext:
    """Run every step of the loop on the built-in data, keeping all state under ``home``."""
    from mloop.demo.data import ride_hailing, split_by_time

    settings = Settings.load(home=str(home), tracking_uri="")
    trips = ride_hailing(n_trips=n_trips)
    train, valid, live = split_by_time(trips)
    ctx = DemoContext(home=Path(settings.home), console=console, client=TrackingClient(settings), trips=trips,
                      train=train, valid=valid, live=live)
    console.print(f"[bold]mloop demo[/] - {len(trips):,} ride-hailing trips "
                  f"({len(train):,} train, {len(valid):,} validation, {len(live):,} in the changed last month)")
    for title, step in _steps():
        started = time.perf_counter()
        console.rule(f"[bold cyan]{title}")
        step(ctx)
        console.print(f"[dim]{title}: {time.perf_counter() - started:.1f} s[/]")
    return ctx
