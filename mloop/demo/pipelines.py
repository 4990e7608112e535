"""Demo step: the training as a flow that fails at evaluate, then resumes re-running only from the failed step.

The flow trains every candidate in a foreach (each a tracked run) and registers the best few; the tracking and
registry steps that follow look at what it produced.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from rich.table import Table

from mloop.demo.runner import DemoContext
from mloop.demo.train_flow import MODEL_NAME

FLOW_FILE = Path(__file__).with_name("train_flow.py")


def run(ctx: DemoContext) -> None:
    from mloop.flows.client import get_run
    from mloop.flows.executors.local import LocalExecutor
    from mloop.flows.runtime import run_flow

    data = ctx.home / "flow-data"
    data.mkdir(parents=True, exist_ok=True)
    ctx.train.to_parquet(data / "train.parquet")
    ctx.valid.to_parquet(data / "valid.parquet")
    marker = data / "evaluation-service-down"
    marker.touch()
    # Earlier demos may have left runs in this home: the steps that follow look at this one's runs only.
    session = ctx.state.setdefault("session", uuid.uuid4().hex[:12])
    params = {"data_dir": str(data), "fail_marker": str(marker), "session": session}
    echo = lambda message: ctx.console.print(f"[dim]{message}[/]", highlight=False)  # noqa: E731
    ctx.console.print(f"[bold]mloop flow run {FLOW_FILE.name}[/] (prepare -> fit every candidate in a foreach -> "
                      "choose -> evaluate -> register), with the evaluation service down:")
    first = run_flow(str(FLOW_FILE), params=params, settings=ctx.settings, tags=["demo"],
                     executor=LocalExecutor(), raise_on_failure=False, echo=echo)
    ctx.console.print(f"[red]{first.error}[/]", highlight=False)
    marker.unlink()
    ctx.console.print(f"\nThe service is back: [bold]mloop flow resume {FLOW_FILE.name} {first.run_id[:8]}[/]")
    second = run_flow(str(FLOW_FILE), settings=ctx.settings, executor=LocalExecutor(), origin_run=first.run_id,
                      echo=echo)
    run = get_run(second.run_id, settings=ctx.settings)
    table = Table(title=f"Resumed run {run.id[:8]} of TripDurationFlow")
    for column in ("step", "tasks", "what happened", "seconds"):
        table.add_column(column)
    for name, step in run.steps.items():
        reused = all(t.reused_from for t in step.tasks)
        table.add_row(name, str(len(step)), "[dim]reused from the failed run[/]" if reused else "[green]ran[/]",
                      "" if reused else f"{sum(t.seconds or 0 for t in step.tasks):.2f}")
    ctx.console.print(table)
    ctx.console.print(f"Reused {len(second.reused)} tasks ({', '.join(second.reused)}); re-ran only "
                      f"{', '.join(second.executed)}.")
    data_ = run.data
    ctx.console.print(f"Candidates {', '.join(f'{k} {v:.3f}' for k, v in data_.scores.items())}; registered "
                      + ", ".join(f"[bold]{MODEL_NAME} v{v}[/] ({k})" for k, v in data_.versions.items())
                      + " from the flow's register task.")
    ctx.state["flow_run_id"] = run.id
    ctx.state["models"] = {task.data.candidate_run: task.data.model for task in run["fit"].tasks}
    ctx.console.print(f"Look next: [bold]mloop flow show {run.id[:8]}[/], [bold]mloop flow logs {run.id[:8]} fit[/], "
                      "[bold]mloop flow list --tag demo[/].")
