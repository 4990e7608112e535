"""``mloop tune`` (run a hyperparameter search) and ``mloop studies`` (list studies, or one study's trials)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import typer

from mloop.cli._app import app, console
from mloop.cli._render import frame_table, settings_from
from mloop.errors import InvalidInputError

_TARGET = "module:function or path/to/file.py:function"


def load_objective(target: str) -> Any:
    """The function ``target`` names (``pkg.module:objective`` or ``file.py:objective``); importing runs its module.

    The current folder (or the file's folder) goes on ``sys.path``, so worker processes import it too.
    """
    module_name, _, function = target.rpartition(":")
    if not module_name or not function.isidentifier():
        raise InvalidInputError(field="objective", value=target, expected=_TARGET)
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        if not path.is_file():
            raise InvalidInputError(field="objective", value=target, expected=f"{_TARGET} naming an existing file")
        folder, module_name = str(path.parent), path.stem
    else:
        folder = str(Path.cwd())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInputError(field="objective", value=target, expected=f"{_TARGET} that imports ({exc})") from exc
    found = getattr(module, function, None)
    if not callable(found):
        raise InvalidInputError(field="objective", value=target,
                                expected=f"a function '{function}' in module '{module_name}'")
    return found


@app.command()
def tune(
    objective: str = typer.Argument(..., help=f"The objective: {_TARGET}; it takes a trial and returns a number."),
    space: Path = typer.Option(None, "--space", help="A YAML file of the search space (see docs/tuning.md)."),
    n_trials: int = typer.Option(None, "--n-trials", help="Finished trials the study should have in all."),
    timeout: float = typer.Option(None, "--timeout", help="Start no trial after this many seconds."),
    direction: str = typer.Option("minimize", "--direction", help="minimize or maximize."),
    parallel: int = typer.Option(1, "--parallel", help="Worker processes sharing the study."),
    study: str = typer.Option(None, "--study", help="Study name (default: the function name); resumed if it exists."),
    experiment: str = typer.Option(None, "--experiment", help="Experiment of the study's runs (default: the study)."),
    metric: str = typer.Option("objective", "--metric", help="The metric the objective's value is logged as."),
    register: str = typer.Option(None, "--register", help="Register the best trial's logged model under this name."),
    home: str = typer.Option(None, "--home", help="mloop home folder."),
) -> None:
    """Search hyperparameters with Optuna; each trial is a child run of the study's run."""
    from mloop.tracking import TrackingClient
    from mloop.tuning import tune as run_search

    client = TrackingClient(settings_from(home))
    result = run_search(load_objective(objective), space, n_trials=n_trials, timeout=timeout, direction=direction,
                        parallel=parallel, study=study, experiment=experiment, metric=metric, client=client)
    frame = result.trials_frame()
    counts = frame["state"].value_counts().to_dict()
    console.print(f"study {result.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), highlight=False)
    if counts.get("complete"):
        console.print(f"best {result.metric} = {result.best_value:g} (trial {result.best_trial.number}, run "
                      f"{result.best_run_id}) with {result.best_params}", highlight=False)
    if register:
        version = result.register_best(register)
        console.print(f"registered {version.name} version {version.version}", highlight=False)


@app.command()
def studies(
    name: str = typer.Argument(None, help="A study: list its trials instead."),
    home: str = typer.Option(None, "--home", help="mloop home folder."),
) -> None:
    """List the hyperparameter studies, or the trials of one."""
    import pandas as pd

    from mloop.tuning import list_studies, load_study

    settings = settings_from(home)
    if name:
        frame = load_study(name, settings).trials_frame().drop(columns=["run_id", "start", "end"])
        console.print(frame_table(frame, title=f"study {name}"))
        return
    rows = [{"name": s["name"], "direction": s["direction"], "metric": s["metric"],
             **{k: s["trials"][k] for k in ("complete", "pruned", "fail", "running")}, "best_value": s["best_value"]}
            for s in list_studies(settings)]
    console.print(frame_table(pd.DataFrame(rows), title="studies"))
