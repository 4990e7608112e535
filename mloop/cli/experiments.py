"""``mloop experiments``: list, create, rename, delete, restore."""

from __future__ import annotations

import typer
from rich.table import Table

from mloop._util.clock import from_ms
from mloop.cli._app import app, console
from mloop.cli._render import settings_from

experiments_app = typer.Typer(help="Experiments: create, list, rename, delete, restore.", no_args_is_help=True)
app.add_typer(experiments_app, name="experiments")
HOME = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop).")


def _client(home: str | None):  # type: ignore[no-untyped-def]
    from mloop.tracking import TrackingClient

    return TrackingClient(settings_from(home))


@experiments_app.command("list")
def list_(all_: bool = typer.Option(False, "--all", help="Include deleted experiments."), home: str = HOME) -> None:
    """List experiments."""
    table = Table("id", "name", "stage", "created")
    for exp in _client(home).list_experiments(include_deleted=all_):
        table.add_row(exp.experiment_id, exp.name, exp.lifecycle_stage,
                      f"{from_ms(exp.creation_time):%Y-%m-%d %H:%M}")
    console.print(table)


@experiments_app.command()
def create(name: str, home: str = HOME) -> None:
    """Create an experiment."""
    exp = _client(home).create_experiment(name)
    console.print(f"created experiment [bold]{exp.name}[/] (id {exp.experiment_id})")


@experiments_app.command()
def rename(name: str, new_name: str, home: str = HOME) -> None:
    """Rename an experiment."""
    _client(home).rename_experiment(name, new_name)
    console.print(f"renamed [bold]{name}[/] to [bold]{new_name}[/]")


@experiments_app.command()
def delete(name: str, home: str = HOME) -> None:
    """Soft-delete an experiment (restore it, or purge it later with `mloop gc`)."""
    _client(home).delete_experiment(name)
    console.print(f"deleted experiment [bold]{name}[/] (restore with `mloop experiments restore {name}`)")


@experiments_app.command()
def restore(name: str, home: str = HOME) -> None:
    """Restore a deleted experiment."""
    _client(home).restore_experiment(name)
    console.print(f"restored experiment [bold]{name}[/]")
