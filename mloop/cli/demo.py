"""``mloop demo``: the end-to-end loop on built-in data."""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli._app import app, console


@app.command()
def demo(
    home: Path = typer.Option(Path(".mloop-demo"), help="Folder for the demo's stores (created if missing)."),
    trips: int = typer.Option(60_000, min=2_000, max=2_000_000, help="How many trips to generate."),
    ui: bool = typer.Option(False, "--ui", help="Keep serving the web UI on 127.0.0.1 after the demo (Ctrl-C stops)."),
    port: int = typer.Option(5000, min=1, max=65535, help="Port of the web UI (with --ui)."),
) -> None:
    """Run the whole loop on built-in ride-hailing data: track, register, serve, watch."""
    from mloop.demo.runner import run_demo

    ctx = run_demo(home, console, n_trips=trips)
    _print_pages(ctx, f"http://127.0.0.1:{port}", started=ui)
    if ui:
        from mloop.cli.ui import serve_locally

        serve_locally(port, str(ctx.home))


def _print_pages(ctx, base: str, started: bool) -> None:  # type: ignore[no-untyped-def]
    """The pages of the web UI worth opening after the demo, and how to serve them."""
    from mloop.demo.train_flow import EXPERIMENT, TripDurationFlow
    from mloop.ui import compare_url, experiment_url, run_url

    console.rule("[bold cyan]Web UI")
    if not started:
        console.print(f"Serve it with [bold]mloop ui --home {ctx.home} --port {base.rsplit(':', 1)[1]}[/] "
                      "(or run the demo with --ui), then open:", highlight=False, soft_wrap=True)
    experiment = ctx.client.get_experiment(EXPERIMENT).experiment_id
    session = ctx.state.get("session")
    mine = f"tags.demo_session = '{session}'" if session else ""
    candidates = ctx.client.search_runs(EXPERIMENT, filter=mine, order_by="metrics.val_rmse", limit=3)
    pages = [(f"the runs of '{EXPERIMENT}'", experiment_url(base, experiment))]
    flow = ctx.client.repo.get_experiment_by_name(TripDurationFlow.__name__)  # a flow tracks its runs under its name
    if flow is not None:
        pages.append(("the training flow's runs, each task folded under its flow run",
                      experiment_url(base, flow.experiment_id)))
    if mine:
        pages.append(("this demo's candidates, best first",
                      experiment_url(base, experiment, mine, "metrics.val_rmse ASC")))
    if "best_run_id" in ctx.state:
        pages.append(("the best run: charts, artifacts, lineage", run_url(base, ctx.state["best_run_id"])))
    if len(candidates) > 1:
        pages.append(("the three best candidates compared", compare_url(base, candidates["run_id"].tolist())))
    for label, url in pages:
        console.print(f"  {url}  [dim]{label}[/]", highlight=False, soft_wrap=True)
