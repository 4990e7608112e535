"""``mloop automl``: search model families under a time budget and register the best one."""

from __future__ import annotations

import dataclasses
import json

import typer

from mloop.cli._app import app, console


@app.command("automl")
def automl_cmd(
    data: str = typer.Argument(..., help="Training data: a Parquet or CSV file."),
    target: str = typer.Option(..., "--target", "-t", help="The column to predict."),
    time_budget: float = typer.Option(60.0, "--time-budget", help="Seconds the search may take."),
    name: str = typer.Option(None, "--name", "-n", help="Registered model name (default: <target>-automl)."),
    task: str = typer.Option(None, "--task", help="classification or regression (inferred from the target)."),
    metric: str = typer.Option(None, "--metric", help="What the search optimizes (roc_auc, accuracy, r2, rmse...)."),
    holdout: float = typer.Option(0.2, "--holdout", help="Share of rows held out to score the winner."),
    jobs: int = typer.Option(-1, "--jobs", "-j", help="Threads per trial (-1: all cores)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Try LightGBM, XGBoost and scikit-learn models on DATA, register the best: ready for `mloop serve`."""
    from mloop.automl import automl

    result = automl(data, target=target, time_budget=time_budget, name=name, task=task, metric=metric,
                    holdout=holdout, n_jobs=jobs)
    if as_json:
        print(json.dumps(dataclasses.asdict(result), default=str))
        return
    scores = ", ".join(f"{k} {v:.4f}" for k, v in result.holdout.items())
    console.print(f"registered [bold]{result.uri}[/] ({result.learner}, best of {result.n_trials} trials in "
                  f"{result.search_seconds:.0f}s by {result.metric})", highlight=False)
    console.print(f"holdout: {scores}", highlight=False)
    for note in result.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
    console.print(f"serve it: mloop serve {result.uri}", highlight=False)
