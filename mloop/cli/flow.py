"""``mloop flow``: run, resume, check, list, show, logs and tag flows; ``mloop scheduler`` starts scheduled ones."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from mloop.cli._app import app, console, error_console
from mloop.config import Settings
from mloop.errors import InvalidInputError

flow_app = typer.Typer(help="Flows: run, resume, check, list, show, logs, tag.", no_args_is_help=True)
app.add_typer(flow_app, name="flow")
HOME = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop).")
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _settings(home: str | None) -> Settings:
    return Settings.load(home=home)


def _params(args: list[str]) -> dict[str, str]:
    """``--alpha 0.3 --name=x`` after the file: the flow's parameters."""
    params: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise InvalidInputError(field="parameters", value=arg, expected="--name value pairs after the flow file")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
        else:
            if i + 1 >= len(args):
                raise InvalidInputError(field=arg, value=None, expected="a value after the parameter name")
            key, value = arg[2:], args[i + 1]
            i += 1
        params[key.replace("-", "_")] = value
        i += 1
    return params


def _executor(name: str, address: str | None, max_workers: int | None, file: str, flow: str | None,
              warm: bool = True) -> Any:
    """The executor ``name``; with ``warm``, a local one starts booting its fork server now, while the flow
    is imported and prepared (a resume leaves that to the runtime, which knows whether any step will run)."""
    from mloop.flows import _executor as make

    if name not in ("local", "ray"):
        raise InvalidInputError(field="--executor", value=name, expected="local or ray")
    executor = make(name, max_workers, address)
    if warm and name == "local" and os.path.isfile(file):
        executor.start(os.path.abspath(file), flow or "")
    return executor


class _Progress:
    """Steps done, running and failed on one live line (only on a terminal)."""

    def __init__(self) -> None:
        self.status = console.status("starting...") if sys.stderr.isatty() and console.is_terminal else None

    def __enter__(self) -> _Progress:
        if self.status is not None:
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()

    def __call__(self, done: int, running: int, failed: int) -> None:
        if self.status is not None:
            self.status.update(f"tasks done [green]{done}[/] · running [cyan]{running}[/] · failed [red]{failed}[/]")


def _to_stderr(message: str) -> None:
    """Messages as written: they quote user code and paths, which Rich would otherwise read as markup."""
    error_console.print(message, highlight=False, markup=False, soft_wrap=True)


def _execute(file: str, settings: Settings, **kwargs: Any) -> None:
    from mloop.flows.runtime import run_flow

    with _Progress() as progress:
        outcome = run_flow(file, settings=settings, echo=_to_stderr, raise_on_failure=False, progress=progress,
                           **kwargs)
    if outcome.failed:
        error_console.print(f"[bold red]flow failed[/] run {outcome.run_id}", highlight=False)
        _to_stderr(outcome.error or "")
        raise typer.Exit(1)
    parts = [f"{len(outcome.executed)} ran"]
    if outcome.reused:
        parts.append(f"{len(outcome.reused)} reused ({', '.join(outcome.reused[:8])}"
                     + (", ..." if len(outcome.reused) > 8 else "") + ")")
    if outcome.cached:
        parts.append(f"{len(outcome.cached)} from cache ({', '.join(outcome.cached[:8])})")
    console.print(f"[green]flow finished[/] run {outcome.run_id}: " + ", ".join(parts), highlight=False,
                  soft_wrap=True)


@flow_app.command(context_settings=EXTRA)
def run(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="The .py file defining the flow."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag the run (repeatable)."),
    executor: str = typer.Option("local", "--executor", help="local or ray."),
    ray_address: str = typer.Option(None, "--ray-address", help="Ray cluster address (default: a local Ray)."),
    max_workers: int = typer.Option(None, "--max-workers", min=1,
                                    help="Local: CPUs' worth of tasks at once (default: 2 x CPUs, at least 4)."),
    flow: str = typer.Option(None, "--flow", help="The FlowSpec class when the file defines several."),
    schedule_due: int = typer.Option(None, "--schedule-due", hidden=True),
    home: str = HOME,
) -> None:
    """Run a flow: mloop flow run flow.py --alpha 0.3 --tag nightly."""
    settings = _settings(home)
    on_created = None
    if schedule_due is not None:
        from mloop.flows.runtime import open_flow_repo
        from mloop.flows.task import load_flow

        name = load_flow(file, flow).__name__
        on_created = lambda run_id: open_flow_repo(settings).set_schedule_run(name, schedule_due, run_id)  # noqa: E731
    _execute(file, settings, params=_params(ctx.args), tags=tag, flow_class=flow, on_created=on_created,
             executor=_executor(executor, ray_address, max_workers, file, flow))


@flow_app.command()
def resume(
    file: str = typer.Argument(..., help="The .py file defining the flow."),
    run_id: str = typer.Argument(None, help="The run to resume (default: the flow's latest run)."),
    from_step: str = typer.Option(None, "--from", help="Re-run this step and everything after it."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag the new run (repeatable)."),
    executor: str = typer.Option("local", "--executor", help="local or ray."),
    ray_address: str = typer.Option(None, "--ray-address"),
    max_workers: int = typer.Option(None, "--max-workers", min=1),
    flow: str = typer.Option(None, "--flow", help="The FlowSpec class when the file defines several."),
    home: str = HOME,
) -> None:
    """A new run that reuses the finished steps of RUN and re-runs from the failed step (or --from STEP)."""
    settings = _settings(home)
    pool = _executor(executor, ray_address, max_workers, file, flow, warm=False)
    # no run id: the runtime finds the latest run on the database it opens anyway (a thread, while the
    # executor warms up), rather than this command opening one first
    _execute(file, settings, tags=tag, flow_class=flow, origin_run=run_id, resume_from=from_step, executor=pool,
             resume=True)


@flow_app.command()
def check(file: str = typer.Argument(...), flow: str = typer.Option(None, "--flow")) -> None:
    """Check a flow's graph without running it."""
    from mloop.flows.graph import build_graph
    from mloop.flows.task import load_flow

    flow_cls = load_flow(file, flow)
    graph = build_graph(flow_cls)
    for name in graph.order():
        node = graph[name]
        arrow = f" -> {', '.join(node.out)}" if node.out else ""
        extra = f" (foreach {node.foreach})" if node.foreach else f" (switch on {node.condition})" if node.condition \
            else " (join)" if node.is_join else ""
        console.print(f"  {name}{arrow}{extra}", highlight=False)
    for name, param in flow_cls._parameters().items():  # what `mloop flow run FILE --name value` accepts
        default = "required" if param.required else f"default {param.default!r}"
        console.print(f"  --{name.replace('_', '-')}  {param._expected()}, {default}"
                      + (f"  {param.help}" if param.help else ""), highlight=False, markup=False)
    console.print(f"[green]{graph.name}: {len(graph.nodes)} steps, graph OK[/]")


@flow_app.command("list")
def list_(
    flow: str = typer.Argument(None, help="Only this flow."),
    tag: str = typer.Option(None, "--tag", "-t", help="Only runs with this tag."),
    status: str = typer.Option(None, "--status", help="running, finished or failed."),
    limit: int = typer.Option(50, min=1),
    home: str = HOME,
) -> None:
    """List flow runs, newest first."""
    from rich.table import Table  # here, not at the top: run and resume start faster without it

    from mloop.flows.client import list_runs

    runs = list_runs(flow, tag=tag, status=status, limit=limit, settings=_settings(home))
    table = Table(title=f"{len(runs)} flow runs")
    for column in ("run", "flow", "status", "created", "tags", "resumed from"):
        table.add_column(column)
    for r in runs:
        color = {"finished": "green", "failed": "red"}.get(r.status, "yellow")
        table.add_row(r.id[:12], r.flow_name, f"[{color}]{r.status}[/]", f"{r.created:%m-%d %H:%M:%S}",
                      ", ".join(r.tags), (r.origin_run_id or "")[:8])
    console.print(table)


@flow_app.command()
def show(run_id: str, home: str = HOME) -> None:
    """One run: parameters, tags and each step's tasks with status, time and reuse."""
    from rich.table import Table

    from mloop.flows.client import get_run

    run = get_run(run_id, settings=_settings(home))
    console.print(f"[bold]{run.flow_name}[/] run {run.id}  status [bold]{run.status}[/]  executor {run.executor}",
                  highlight=False)
    console.print(f"params: {run.params}   tags: {run.tags}" + (f"   resumed from {run.origin_run_id}"
                                                               if run.origin_run_id else ""), highlight=False)
    table = Table()
    for column in ("step", "tasks", "status", "seconds", "reused", "artifacts"):
        table.add_column(column)
    for name, step in run.steps.items():
        ran = [t for t in step.tasks if not t.reused_from]
        reused = len(step.tasks) - len(ran)
        seconds = f"{sum(t.seconds or 0 for t in ran):.2f}" if ran else ""  # reused tasks took no time in this run
        table.add_row(name, str(len(step)), step.status, seconds, str(reused) if reused else "",
                      ", ".join(sorted(step.task.artifacts))[:80])
    console.print(table)
    for step in run.steps.values():
        for task in step.tasks:
            if task.status == "failed" and task.error:
                console.print(f"[red]{task.path} failed:[/]\n{task.error.strip()}", highlight=False)


@flow_app.command()
def logs(
    run_id: str,
    step: str = typer.Argument(..., help="The step (e.g. train) or one task (train/3, or train#2 for a loop's "
                                "second pass)."),
    stderr: bool = typer.Option(False, "--stderr", help="Only stderr."),
    stdout: bool = typer.Option(False, "--stdout", help="Only stdout."),
    home: str = HOME,
) -> None:
    """Print the stdout and stderr a step's tasks captured."""
    from mloop.flows._paths import parse_path
    from mloop.flows.client import get_run

    run = get_run(run_id, settings=_settings(home))
    name = parse_path(step).step
    tasks = [t for t in run[name].tasks if name == step or t.path == step]
    if not tasks:
        raise InvalidInputError(field="step", value=step, expected=f"a task of {name}: "
                                f"{[t.path for t in run[name].tasks][:10]}")
    for task in tasks:
        if len(tasks) > 1:
            console.rule(task.path)
        if not stderr:
            sys.stdout.write(task.stdout)
        if not stdout:
            sys.stdout.write(task.stderr)
    sys.stdout.flush()


@flow_app.command()
def tag(
    run_id: str,
    tags: list[str] = typer.Argument(..., help="Tags to add (or remove with --remove)."),
    remove: bool = typer.Option(False, "--remove", help="Remove the tags instead."),
    home: str = HOME,
) -> None:
    """Add tags to a run (or remove them)."""
    from mloop.flows.client import get_run

    run = get_run(run_id, settings=_settings(home))
    run = run.remove_tags(*tags) if remove else run.add_tags(*tags)
    console.print(f"run {run.id}: tags {run.tags}", highlight=False)


@app.command()
def scheduler(
    files: list[str] = typer.Argument(None, help="Flow files or folders with flows that declare @schedule (none: "
                                      "automation rules only)."),
    once: bool = typer.Option(False, "--once", help="One tick: start what is due now, wait for it, exit."),
    now: str = typer.Option(None, "--now", help="Pretend it is this UTC time (ISO 8601), e.g. 2026-01-05T10:05."),
    home: str = HOME,
) -> None:
    """Start flows on their cron schedules (long-running; each start is recorded in the database)."""
    from datetime import UTC, datetime

    from mloop.flows.scheduler import serve

    if home:
        import os

        os.environ["MLOOP_HOME"] = home
    moment = None
    if now:
        try:
            moment = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(field="--now", value=now,
                                    expected="an ISO 8601 time like 2026-01-05T10:05") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    echo = lambda message: console.print(message, highlight=False)  # noqa: E731
    code = serve(files or [], once=once, now=moment, echo=echo, warn=_to_stderr)
    if code:
        raise typer.Exit(code)
