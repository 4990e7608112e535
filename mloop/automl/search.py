"""``mloop.automl``: search model families under a time budget with FLAML, track it, register the winner.

One parent run holds the search (its budget, the winner, the holdout scores and the registered model); each
configuration FLAML tried is a child run with its parameters and validation loss. (A study object of
``mloop.tune`` may hold these later; today they are plain tracking runs.)
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop._util.names import check_name
from mloop._util.optional import require
from mloop.analysis._frame import load_frame
from mloop.automl._data import Prepared, prepare, split
from mloop.automl.families import available, rebuild
from mloop.automl.scores import holdout_scores
from mloop.errors import InvalidInputError

__all__ = ["AutoMLResult", "automl"]

METRICS = {"classification": ("accuracy", "roc_auc", "roc_auc_ovr", "log_loss", "f1", "micro_f1", "macro_f1"),
           "regression": ("r2", "rmse", "mae", "mse", "mape")}


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoMLResult:
    """What the search found: the registered version, the winner and its scores."""

    name: str
    version: int
    uri: str
    run_id: str
    task: str
    metric: str
    learner: str
    config: dict[str, Any]
    holdout: dict[str, float]
    n_trials: int
    search_seconds: float
    notes: list[str] = field(default_factory=list)


def automl(data: Any, *, target: str, time_budget: float = 60, task: str | None = None, metric: str | None = None,
           name: str | None = None, experiment: str | None = None, holdout: float = 0.2,
           seed: int = 0, n_jobs: int = -1) -> AutoMLResult:
    """Search the installed model families (LightGBM, XGBoost, scikit-learn's HistGradientBoosting and linear
    models) for ``time_budget`` seconds, refit the winner as a plain model on the training split, score it on a
    held-out ``holdout`` share, and register it as ``name`` (default ``<target>-automl``) with its signature,
    training schema and profile, ready for ``mloop serve``. ``n_jobs`` is the threads each trial trains with
    (-1: every core; 1 is often faster on a busy machine, where threads wait on each other).

    >>> from sklearn.datasets import load_diabetes
    >>> frame = load_diabetes(as_frame=True).frame
    >>> result = automl(frame, target="target", time_budget=5, name="diabetes")  # doctest: +SKIP
    >>> result.holdout["r2"] > 0.3  # doctest: +SKIP
    True
    """
    budget = _check_budget(time_budget)
    prepared = prepare(load_frame(data), target, task)
    name = check_name(name or f"{target}-automl", "name")
    metric = _check_metric(metric, prepared.task)
    X_train, X_test, y_train, y_test = split(prepared, holdout, seed)
    learners, notes = available(prepared.task, X_train, y_train)
    if not learners:
        raise InvalidInputError(field="data", value=notes, expected="at least one installed model family")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise InvalidInputError(field="n_jobs", value=n_jobs, expected="a positive number of threads, or -1 for all")
    flaml = _search(prepared, X_train, y_train, learners, metric, budget, seed, n_jobs)
    return _track_and_register(prepared, flaml, X_train, X_test, y_train, y_test, name,
                               experiment or name, notes + prepared.notes, time_budget=budget)


def _check_budget(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value <= 0:
        raise InvalidInputError(field="time_budget", value=value, expected="a number of seconds greater than 0")
    return float(value)


def _check_metric(metric: str | None, task: str) -> str:
    if metric is None:
        return "roc_auc" if task == "classification" else "r2"
    if metric not in METRICS[task]:
        raise InvalidInputError(field="metric", value=metric, expected=f"one of {list(METRICS[task])} for {task}")
    return metric


@dataclass(slots=True)
class _Search:
    automl: Any
    trials: list[dict[str, Any]]
    seconds: float
    metric: str


def _search(prepared: Prepared, X: pd.DataFrame, y: pd.Series, learners: list[str], metric: str,
            budget: float, seed: int, n_jobs: int) -> _Search:
    flaml = require("flaml", extra="automl")
    if metric == "roc_auc" and y.nunique() > 2:
        metric = "roc_auc_ovr"
    search = flaml.AutoML()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "trials.jsonl"
        search.fit(X, y, task=prepared.task, time_budget=budget, metric=metric, estimator_list=learners,
                   log_file_name=str(log), log_type="all", seed=seed, verbose=0, n_jobs=n_jobs,
                   retrain_full=False, model_history=False)  # mloop refits the winner itself
        trials = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return _Search(search, [t for t in trials if "learner" in t], time.perf_counter() - started, metric)


def _track_and_register(prepared: Prepared, found: _Search, X_train: pd.DataFrame, X_test: pd.DataFrame,
                        y_train: pd.Series, y_test: pd.Series, name: str, experiment: str, notes: list[str],
                        time_budget: float) -> AutoMLResult:
    from mloop._sdk import start_run

    learner = found.automl.best_estimator
    if learner is None:
        raise InvalidInputError(field="time_budget", value=time_budget,
                                expected="a budget long enough for at least one trial to finish")
    model = rebuild(learner, found.automl.best_model_for_estimator(learner), prepared.task, X_train)
    model.fit(X_train, y_train)
    scores = holdout_scores(model, X_test, y_test, prepared.task)
    config = {k: v.item() if isinstance(v, np.generic) else v for k, v in found.automl.best_config.items()}
    with start_run(experiment=experiment, name=f"automl-{name}") as parent:
        parent.log_params({"task": prepared.task, "metric": found.metric, "time_budget": time_budget,
                           "best_learner": learner, **{f"best.{k}": v for k, v in config.items()}})
        _log_trials(parent, found.trials)
        parent.log_metrics({f"holdout_{k}": v for k, v in scores.items()}
                           | {"trials": len(found.trials), "search_seconds": found.seconds})
        if notes:
            parent.set_tag("mloop.automl.notes", "; ".join(notes)[:4000])
        version = parent.log_model(model, name=name, training_data=X_train, input_example=X_train.head(5),
                                   description=f"AutoML ({found.metric}): {learner}")
    return AutoMLResult(name=name, version=int(version.version), uri=f"models:/{name}/{version.version}",
                        run_id=parent.run_id, task=prepared.task, metric=found.metric, learner=learner,
                        config=config, holdout=scores, n_trials=len(found.trials), search_seconds=found.seconds,
                        notes=notes)


def _log_trials(parent: Any, trials: list[dict[str, Any]]) -> None:
    """Each configuration FLAML tried as a child run: its learner and parameters, validation loss and time."""
    for trial in trials:
        params = {"learner": trial["learner"], **(trial.get("config") or {})}
        with parent.start_run(name=f"trial-{trial.get('record_id', 0)}-{trial['learner']}", params=params,
                              capture_environment=False) as child:
            metrics = {"validation_loss": trial.get("validation_loss"), "trial_time": trial.get("trial_time"),
                       "wall_clock_time": trial.get("wall_clock_time")}
            child.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, int | float)
                               and np.isfinite(v)})
