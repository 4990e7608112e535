"""``mloop runs``: list, show, compare, delete, restore, move."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from mloop.cli._app import app, console
from mloop.cli._render import frame_table, settings_from
from mloop.errors import InvalidInputError

runs_app = typer.Typer(help="Runs: list, show, compare, delete, restore, move.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
HOME = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop).")


def _client(home: str | None):  # type: ignore[no-untyped-def]
    from mloop.tracking import TrackingClient

    return TrackingClient(settings_from(home))


def _resolve(client, run_id: str) -> str:  # type: ignore[no-untyped-def]
    """Accept a full run id or a unique prefix of at least 6 characters."""
    if len(run_id) == 32:
        return run_id
    if len(run_id) < 6 or not all(c in "0123456789abcdef" for c in run_id):
        raise InvalidInputError(field="run_id", value=run_id,
                                expected="a run id or a prefix of at least 6 hex characters")
    found = client.search_runs(filter=f"run_id LIKE '{run_id}%'", include_deleted=True)["run_id"].tolist()
    if len(found) != 1:
        raise InvalidInputError(field="run_id", value=run_id,
                                expected="a prefix matching exactly one run" + (f" (matches {len(found)})"))
    return str(found[0])


@runs_app.command("list")
def list_(
    experiment: str = typer.Argument(None, help="Experiment name (default: all)."),
    filter: str = typer.Option("", "--filter", "-f", help="e.g. \"metrics.rmse < 4 and params.lr = 0.1\""),
    order_by: list[str] = typer.Option([], "--order-by", "-o", help="e.g. 'metrics.rmse' or 'params.lr DESC'"),
    limit: int = typer.Option(50, min=1, help="At most this many runs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    home: str = HOME,
) -> None:
    """List runs, filtered and ordered."""
    frame = _client(home).search_runs(experiment, filter=filter, order_by=order_by or None, limit=limit)
    if as_json:
        console.print_json(frame.to_json(orient="records", date_format="iso"))
        return
    keep = [c for c in frame.columns if c in ("run_id", "name", "status") or c.startswith(("params.", "metrics."))]
    console.print(frame_table(frame[keep], title=f"{len(frame)} runs"))


@runs_app.command()
def show(run_id: str, home: str = HOME) -> None:
    """Show one run: attributes, params, latest metrics, tags, inputs and artifacts."""
    client = _client(home)
    run = client.get_run(_resolve(client, run_id))
    table = Table(title=f"run {run.name} ({run.run_id})", show_header=False)
    for label, value in [("status", run.status.value), ("experiment", run.experiment_id), ("user", run.user),
                         ("started", f"{run.started:%Y-%m-%d %H:%M:%S}"), ("parent", run.parent_run_id or ""),
                         ("artifacts", run.artifact_uri)]:
        table.add_row(label, str(value))
    for kind, values in (("param", run.params), ("metric", run.metrics), ("tag", run.tags)):
        for key, value in sorted(values.items()):
            table.add_row(f"{kind} {key}", json.dumps(value) if not isinstance(value, str) else value)
    for dataset, context in client.repo.list_inputs(run.run_id):
        table.add_row(f"input ({context})", f"{dataset.name} rows={dataset.rows} digest={dataset.digest[:12]}")
    for artifact in client.repo.list_artifacts(run.run_id):
        table.add_row("artifact", f"{artifact.path} ({artifact.size} bytes)")
    console.print(table)
    from mloop.ui import run_url, ui_base

    base = ui_base(client.settings)
    if base is not None:  # the server this client talks to shows the run's page (one line: a cut URL is no link)
        console.print(f"page: {run_url(base, run.run_id)}", highlight=False, soft_wrap=True)


@runs_app.command()
def compare(run_ids: list[str], home: str = HOME) -> None:
    """Params and metrics of several runs side by side; differing rows are marked."""
    client = _client(home)
    result = client.compare_runs([_resolve(client, r) for r in run_ids])
    for title, frame in (("params", result.params), ("metrics", result.metrics)):
        frame = frame.reset_index()
        frame["differs"] = frame["differs"].map({True: "*", False: ""})
        console.print(frame_table(frame, title=title))


@runs_app.command()
def delete(run_id: str, home: str = HOME) -> None:
    """Soft-delete a run (restore it, or purge it with `mloop gc`)."""
    client = _client(home)
    client.delete_run(_resolve(client, run_id))
    console.print(f"deleted run {run_id}")


@runs_app.command()
def restore(run_id: str, home: str = HOME) -> None:
    """Restore a deleted run."""
    client = _client(home)
    client.restore_run(_resolve(client, run_id))
    console.print(f"restored run {run_id}")


@runs_app.command()
def move(run_id: str, experiment: str, home: str = HOME) -> None:
    """Move a run to another experiment."""
    client = _client(home)
    client.move_run(_resolve(client, run_id), experiment)
    console.print(f"moved run {run_id} to {experiment}")
