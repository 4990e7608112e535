"""``mloop demo``: the end-to-end loop on built-in data."""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli._app import app, console


@app.command()
def demo(
    home: Path = typer.Option(Path(".mloop-demo"), help="Folder for the demo's stores (created if missing)."),
    trips: int = typer.Option(60_000, min=2_000, max=2_000_000, help="How many trips to generate."),
) -> None:
    """Run the whole loop on built-in ride-hailing data: track, register, serve, watch."""
    from mloop.demo.runner import run_demo

    run_demo(home, console, n_trips=trips)
