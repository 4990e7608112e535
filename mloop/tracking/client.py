"""TrackingClient: the tracking API over either the stores directly or an mloop server."""

from __future__ import annotations

import atexit
import math
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from mloop._util.clock import now_ms
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.tracking.entities import Experiment, Metric, Run, RunStatus
from mloop.tracking.logger import BackgroundWriter, flush_all
from mloop.tracking.repository import TrackingRepository
from mloop.tracking.run import RunContext, open_runs, run_stack

DEFAULT_EXPERIMENT = "Default"


def open_repository(settings: Settings) -> TrackingRepository:
    """The repository the settings point at: an mloop server by URL, or the local stores."""
    if settings.remote:
        from mloop.tracking._http import HttpTrackingRepository

        return HttpTrackingRepository(settings.tracking_uri)
    from mloop.store.blob import open_blob_store
    from mloop.store.sql import open_database
    from mloop.tracking._sql import SqlTrackingRepository

    return SqlTrackingRepository(open_database(settings.db_url), open_blob_store(settings.artifact_root),
                                 heartbeat_timeout_ms=int(settings.heartbeat_timeout_seconds * 1000),
                                 home=settings.home)


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Runs side by side: ``params`` and ``metrics`` have one column per run, and a ``differs`` column."""

    params: pd.DataFrame
    metrics: pd.DataFrame


class TrackingClient:
    """Experiments and runs: create, log, search, compare and clean up."""

    def __init__(self, settings: Settings | None = None, repo: TrackingRepository | None = None) -> None:
        self.settings = settings or Settings.load()
        self.repo = repo or open_repository(self.settings)
        self.writer = BackgroundWriter(self.repo, self.settings.heartbeat_seconds)
        self.default_experiment: str | None = None  # set_experiment's choice for start_run without one
        self.last_run_id: str | None = None  # the run started or ended last
        self._experiment_ids: dict[str, str] = {}  # experiment name -> id, as start_run last found it

    # ---------------------------------------------------------------- experiments
    def create_experiment(self, name: str, tags: dict[str, str] | None = None) -> Experiment:
        return self.repo.create_experiment(name, tags)

    def get_experiment(self, name_or_id: str) -> Experiment:
        """An experiment by name (or by id)."""
        found = self.repo.get_experiment_by_name(str(name_or_id))
        if found is not None:
            return found
        if str(name_or_id).isdigit():
            return self.repo.get_experiment(str(name_or_id))
        raise NotFoundError(f"No experiment named '{name_or_id}'. Known: "
                            f"{[e.name for e in self.repo.list_experiments()][:10]}", field="experiment")

    def get_or_create_experiment(self, name: str) -> Experiment:
        found = self.repo.get_experiment_by_name(name)
        if found is not None:
            return found
        from mloop.errors import AlreadyExistsError

        try:
            return self.repo.create_experiment(name)
        except AlreadyExistsError:  # another process created it meanwhile
            found = self.repo.get_experiment_by_name(name)
            assert found is not None
            return found

    def set_experiment(self, name: str) -> Experiment:
        """Make ``name`` (created if missing) the experiment of later ``start_run`` calls that name none."""
        experiment = self.get_or_create_experiment(name)
        self.default_experiment = experiment.name
        return experiment

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        return self.repo.list_experiments(include_deleted)

    def rename_experiment(self, name: str, new_name: str) -> Experiment:
        self._experiment_ids.clear()
        exp = self.get_experiment(name)
        self.repo.rename_experiment(exp.experiment_id, new_name)
        return self.repo.get_experiment(exp.experiment_id)

    def delete_experiment(self, name: str) -> None:
        self.repo.delete_experiment(self.get_experiment(name).experiment_id)

    def restore_experiment(self, name: str) -> None:
        self.repo.restore_experiment(self.get_experiment(name).experiment_id)

    # ---------------------------------------------------------------- runs
    def start_run(self, experiment: str | None = None, name: str | None = None, *,
                  tags: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                  description: str = "", parent: str | RunContext | None = None,
                  experiment_id: str | None = None, capture_environment: bool = True,
                  system_metrics_interval: float | None = None,
                  run_class: type[RunContext] = RunContext) -> RunContext:
        """Start a run; inside another active run of this thread it becomes that run's child, and inside a flow
        step, a child of the step's run (in the flow's experiment unless told otherwise)."""
        stack = run_stack()
        in_step = _flow_step_run(self.settings) if parent is None and not stack else None
        if in_step is not None:
            parent = in_step[0]
            experiment = experiment or (None if experiment_id else in_step[1])
        exp_name = None if experiment_id is not None else experiment or self.default_experiment or DEFAULT_EXPERIMENT
        if parent is None and stack:
            parent = stack[-1]
        parent_id = parent.run_id if isinstance(parent, RunContext) else parent
        all_tags = {}
        if capture_environment:
            from mloop.tracking.env import run_context_tags

            all_tags.update(run_context_tags())
        if tags is not None and not isinstance(tags, dict):
            raise InvalidInputError(field="tags", value=tags, expected="a dict of key: value")
        all_tags.update({k: str(v) for k, v in (tags or {}).items()})
        args = (name, self.settings.user, all_tags, parent_id, description)
        if exp_name is None:  # create_run checks that the experiment exists and is active
            run = self.repo.create_run(str(experiment_id), *args)
        else:
            run = self._create_run_in(exp_name, args)
        active = run_class(self, run)
        self.last_run_id = run.run_id
        stack.append(active)
        open_runs.add(active)
        if params:
            active.log_params(params)
        if system_metrics_interval is not None:
            active.log_system_metrics(system_metrics_interval)
        return active

    def _create_run_in(self, experiment: str, args: tuple[Any, ...]) -> Run:
        """A run in the experiment named ``experiment`` (created if missing).

        The name's id is remembered, as MLflow's fluent API remembers its active experiment: a loop of short
        runs then costs one write per run. When the remembered experiment is gone or deleted, the name is
        looked up again; one renamed by another process keeps receiving this process's runs.
        """
        known = self._experiment_ids.get(experiment)
        if known is not None:
            try:
                return self.repo.create_run(known, *args)
            except (NotFoundError, ConflictError):
                del self._experiment_ids[experiment]
        exp_id = self.get_or_create_experiment(experiment).experiment_id
        run = self.repo.create_run(exp_id, *args)
        self._experiment_ids[experiment] = exp_id
        return run

    def get_run(self, run_id: str) -> Run:
        """A run as stored, with what this process logged to it so far (queued params, tags and points)."""
        self.writer.settle()
        return self.repo.get_run(run_id)

    def metric_history(self, run_id: str, key: str, max_points: int | None = None) -> list[Metric]:
        """Every point of one metric, in step order; ``max_points`` downsamples for charts, keeping extremes."""
        if max_points is not None and (not isinstance(max_points, int) or max_points < 4):
            raise InvalidInputError(field="max_points", value=max_points, expected="a whole number >= 4 or None")
        self.writer.settle()
        return self.repo.metric_history(run_id, key, max_points)

    def download_artifacts(self, run_id: str, path: str, dest: str | Path) -> Path:
        return self.repo.get_artifact(run_id, path, Path(dest))

    def delete_run(self, run_id: str) -> None:
        self.repo.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.repo.restore_run(run_id)

    def move_run(self, run_id: str, experiment: str) -> None:
        self.repo.move_run(run_id, self.get_experiment(experiment).experiment_id)

    def kill_run(self, run_id: str) -> None:
        self.repo.end_run(run_id, RunStatus.KILLED)

    # ---------------------------------------------------------------- search
    def search_runs(self, experiments: str | list[str] | None = None, filter: str = "",
                    order_by: str | list[str] | None = None, limit: int | None = None,
                    include_deleted: bool = False) -> pd.DataFrame:
        """Runs as a DataFrame: attributes, then ``params.*``, ``metrics.*`` and ``tags.*`` columns."""
        if experiments is None:
            ids: list[str] = []
        else:
            names = [experiments] if isinstance(experiments, str) else list(experiments)
            ids = [self.get_experiment(n).experiment_id for n in names]
        order = [order_by] if isinstance(order_by, str) else order_by
        self.writer.settle()  # what this process logged is part of the answer
        return self.repo.search_runs(ids, filter or "", order, limit, include_deleted)

    def best_run(self, experiment: str, metric: str, mode: str = "min", filter: str = "") -> Run:
        """The run with the lowest (``mode="min"``) or highest (``"max"``) latest value of ``metric``."""
        if mode not in ("min", "max"):
            raise InvalidInputError(field="mode", value=mode, expected="'min' or 'max'")
        frame = self.search_runs(experiment, filter=filter,
                                 order_by=[f"metrics.`{metric}` {'ASC' if mode == 'min' else 'DESC'}"], limit=1)
        column = f"metrics.{metric}"
        if frame.empty or column not in frame or math.isnan(frame[column].iloc[0]):
            raise NotFoundError(f"No run of experiment '{experiment}' has metric '{metric}'.", field="metric")
        return self.get_run(frame["run_id"].iloc[0])

    def compare_runs(self, run_ids: list[str]) -> RunComparison:
        """Params and metrics of several runs side by side, with the differing rows marked."""
        if not isinstance(run_ids, list | tuple) or len(run_ids) < 1:
            raise InvalidInputError(field="run_ids", value=run_ids, expected="a list of run ids")
        runs = [self.get_run(r) for r in run_ids]
        labels = [f"{r.name} ({r.run_id[:8]})" for r in runs]
        return RunComparison(params=_side_by_side([r.params for r in runs], labels),
                             metrics=_side_by_side([r.metrics for r in runs], labels))

    # ---------------------------------------------------------------- retention
    def gc(self, older_than: timedelta = timedelta(days=30)) -> dict[str, int]:
        """Delete for real the runs and experiments deleted more than ``older_than`` ago, with their artifacts."""
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidInputError(field="older_than", value=older_than, expected="a non-negative timedelta")
        return self.repo.purge(now_ms() - int(older_than.total_seconds() * 1000))


def _side_by_side(values: list[dict[str, Any]], labels: list[str]) -> pd.DataFrame:
    keys = sorted({k for v in values for k in v})
    frame = pd.DataFrame({label: [v.get(k) for k in keys] for label, v in zip(labels, values, strict=True)},
                         index=pd.Index(keys, name="key"))
    frame["differs"] = [len({repr(v.get(k)) for v in values}) > 1 for k in keys]
    return frame


@atexit.register
def _end_open_runs() -> None:
    """Normal interpreter exit: flush every writer and finish runs left open."""
    flush_all()
    for run in list(open_runs):
        if not run._ended:
            try:
                run.end(RunStatus.FINISHED)
            except Exception:  # the store may be gone at exit; points were flushed above
                pass


def _flow_step_run(settings: Settings) -> tuple[str, str] | None:
    """(the running flow task's run id, the flow name) when this process runs a flow step on these stores."""
    flows = sys.modules.get("mloop.flows._current")  # loaded only in a flow worker: no import cost elsewhere
    return flows.current.tracking_parent(settings) if flows is not None else None
