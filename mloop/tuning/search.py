"""``mloop.tune``: a hyperparameter search on Optuna, tracked as a run with one child run per trial."""

from __future__ import annotations

import contextlib
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mloop._util.names import check_key
from mloop._util.optional import require
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError
from mloop.tracking.client import TrackingClient
from mloop.tuning._worker import Worker
from mloop.tuning.journal import study_lock
from mloop.tuning.space import Dimension, parse_space
from mloop.tuning.study import METRIC, RUN_ID, Study, storage_for
from mloop.tuning.trial import Trial

_BACKENDS = ("processes", "ray")


def tune(objective: Callable[[Trial], Any], space: dict[str, Any] | str | Path | None = None, *,
         n_trials: int | None = None, timeout: float | None = None, direction: str = "minimize",
         parallel: int = 1, study: str | None = None, experiment: str | None = None, metric: str = "objective",
         sampler: Any = None, pruner: Any = None, backend: str = "processes",
         client: TrackingClient | None = None) -> Study:
    """Search ``space`` for the parameters that minimize (or maximize) ``objective``; returns the ``Study``.

    ``objective(trial)`` reads ``trial.params`` (drawn from ``space``, see ``mloop.tuning.space``) or draws
    its own (``trial.suggest_float(...)``), may ``trial.report(value, step)`` to be pruned, and returns a
    number or a dict of metrics holding ``metric``. The study ``study`` (default: the objective's name) lives
    in the metadata database: calling ``tune`` again resumes it, and ``n_trials`` counts all its finished
    trials, so after a crash the study only runs what is missing. ``parallel=N`` runs N worker processes
    (Ray tasks with ``backend="ray"``) that share the study; their objective must be importable (a function
    of a module). ``sampler`` and ``pruner`` are Optuna's (default: TPE and the median pruner).

    >>> import mloop, tempfile
    >>> _ = mloop.configure(home=tempfile.mkdtemp())
    >>> study = mloop.tune(lambda t: (t.params["x"] - 2) ** 2, {"x": ("float", -10, 10)}, n_trials=20, study="x")
    >>> abs(study.best_params["x"] - 2) < 3
    True
    """
    optuna = require("optuna", extra="tune")
    dims = parse_space(space)
    _check_args(objective, n_trials, timeout, direction, parallel, metric, backend)
    name = _study_name(study, objective)
    if client is None:
        from mloop._sdk import client as sdk_client

        client = sdk_client()
    db, storage = storage_for(client.settings)
    # Optuna says "Trial 3 finished..." for each trial at INFO; the runs already record that. The level is put
    # back afterwards: it is the user's process-wide setting, not ours.
    with _optuna_quiet(optuna):
        ostudy = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True,
                                     sampler=sampler, pruner=pruner)
        if ostudy.direction.name.lower() != direction:
            raise ConflictError(f"Study '{name}' exists and {ostudy.direction.name.lower()}s its objective; it cannot "
                                f"{direction} it. Name another study.", field="direction")
        known = ostudy._storage.get_study_system_attrs(ostudy._study_id).get(METRIC)
        if known is not None and known != metric:
            raise ConflictError(f"Study '{name}' logs its objective as metric '{known}', not '{metric}'.",
                                field="metric")
        study_run = _study_run(client, db, ostudy, experiment or _default_experiment(name), metric)
        deadline = time.time() + timeout if timeout is not None else float("inf")
        with study_run or contextlib.nullcontext():  # the study's run ends failed when the search raises
            if parallel == 1:
                worker = Worker(client, db, ostudy, dims, metric, n_trials, deadline, *_run_ids(ostudy, client))
                worker.work(objective)
            else:
                _run_parallel(objective, dims, client.settings, name, metric, n_trials, deadline, parallel, backend,
                              sampler, pruner)
        return _summarized(Study(optuna.load_study(study_name=name, storage=storage), client.settings), client)


@contextlib.contextmanager
def _optuna_quiet(optuna: Any) -> Iterator[None]:
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _check_args(objective: Any, n_trials: Any, timeout: Any, direction: str, parallel: Any, metric: str,
                backend: str) -> None:
    if not callable(objective):
        raise InvalidInputError(field="objective", value=objective, expected="a function taking a trial")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise InvalidInputError(field="n_trials", value=n_trials, expected="a whole number >= 1, or None")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise InvalidInputError(field="timeout", value=timeout, expected="a number of seconds > 0, or None")
    if n_trials is None and timeout is None:
        raise InvalidInputError(field="n_trials", value=None, expected="n_trials or timeout (or both): a search ends")
    if direction not in ("minimize", "maximize"):
        raise InvalidInputError(field="direction", value=direction, expected="'minimize' or 'maximize'")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or not 1 <= parallel <= 256:
        raise InvalidInputError(field="parallel", value=parallel, expected="a whole number of workers, 1 to 256")
    if backend not in _BACKENDS:
        raise InvalidInputError(field="backend", value=backend, expected=f"one of {list(_BACKENDS)}")
    check_key(metric, "metric")


def _study_name(study: str | None, objective: Any) -> str:
    name = study if study is not None else getattr(objective, "__name__", "")
    if name == "<lambda>" or not name:
        raise InvalidInputError(field="study", value=study, expected="a study name (the objective has none)")
    check_key(name, "study")
    return name


def _default_experiment(study: str) -> str | None:
    """The study's own experiment; inside a flow step, None: the flow's, where the step's run is."""
    flows = sys.modules.get("mloop.flows._current")  # loaded only in a flow worker
    return None if flows is not None and flows.current.task_id is not None else study


def _study_run(client: TrackingClient, db: Any, ostudy: Any, experiment: str, metric: str) -> Any:
    """The study's run, started here on the study's first session (None on a resumed one)."""
    with study_lock(db, ostudy.study_name):
        attrs = ostudy._storage.get_study_system_attrs(ostudy._study_id)
        if RUN_ID in attrs:
            return None
        run = client.start_run(experiment, ostudy.study_name, tags={"mloop.tune.study": ostudy.study_name},
                               params={"direction": ostudy.direction.name.lower(), "metric": metric})
        ostudy._storage.set_study_system_attr(ostudy._study_id, METRIC, metric)
        ostudy._storage.set_study_system_attr(ostudy._study_id, RUN_ID, run.run_id)
        return run


def _run_ids(ostudy: Any, client: TrackingClient) -> tuple[str, str]:
    run_id = ostudy._storage.get_study_system_attrs(ostudy._study_id)[RUN_ID]
    return run_id, client.repo.get_run(run_id).experiment_id


def _summarized(study: Study, client: TrackingClient) -> Study:
    """Tag the study's run with its trial counts and best value (tags: the run may have ended in an earlier
    session, and a resumed study updates them)."""
    frame = study.trials_frame()
    states = ("complete", "pruned", "fail")
    tags = {f"mloop.tune.{state}": str(int((frame["state"] == state).sum())) for state in states}
    if tags["mloop.tune.complete"] != "0":
        tags.update({"mloop.tune.best_value": repr(study.best_value), "mloop.tune.best_run": study.best_run_id})
    client.repo.set_tags(str(study.run_id), tags)
    return study

def _run_parallel(objective: Callable[[Trial], Any], dims: dict[str, Dimension], settings: Settings, name: str,
                  metric: str, n_trials: int | None, deadline: float, parallel: int, backend: str,
                  sampler: Any, pruner: Any) -> None:
    try:
        pickle.dumps((objective, sampler, pruner))
    except Exception as exc:
        raise InvalidInputError(field="objective", value=getattr(objective, "__name__", objective),
                                expected="with parallel > 1, a function defined at the top of a module (workers "
                                         f"import it), and a picklable sampler and pruner ({exc})") from exc
    args = (objective, dims, settings, name, metric, n_trials, deadline, sampler, pruner)
    if backend == "ray":
        ray = require("ray", extra="ray")
        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, log_to_driver=False)
        remote = ray.remote(work_in_process)
        ray.get([remote.remote(*args) for _ in range(parallel)])
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        for future in [pool.submit(work_in_process, *args) for _ in range(parallel)]:
            future.result()


def work_in_process(objective: Callable[[Trial], Any], dims: dict[str, Dimension], settings: Settings, name: str,
                    metric: str, n_trials: int | None, deadline: float, sampler: Any, pruner: Any) -> int:
    """A worker process's part of a study: run trials until it is done; the number run here."""
    from mloop import _sdk

    optuna = require("optuna", extra="tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    client = _sdk.configure(**{f: getattr(settings, f) for f in ("home", "db_url", "artifact_root", "user",
                                                                   "heartbeat_seconds", "heartbeat_timeout_seconds")})
    db, storage = storage_for(client.settings)
    ostudy = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    worker = Worker(client, db, ostudy, dims, metric, n_trials, deadline, *_run_ids(ostudy, client))
    try:
        return worker.work(objective)
    finally:
        client.writer.flush()
