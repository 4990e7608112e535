"""The root Typer app and the shared consoles."""

from __future__ import annotations

import typer
from rich.console import Console

from mloop import __version__

app = typer.Typer(
    name="mloop",
    help="mloop: track, register, serve and retrain machine-learning models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
error_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"mloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """mloop: the MLOps loop in one package."""
