"""One worker's loop: claim a trial under the study's lock, run the objective in the trial's run, tell Optuna.

A study asks for ``n_trials`` trials in all, across every process and every session: a worker counts the
study's live and finished trials and starts one only while fewer exist, under a cross-process lock, so
workers never overshoot. A trial whose worker died (kill -9: its process is gone from this machine, or its
run stopped sending heartbeats) is marked failed and its run killed; the budget it held goes to a new
trial, so a resumed study ends with exactly ``n_trials`` finished trials, none run twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mloop.errors import NotFoundError
from mloop.tracking.client import TrackingClient
from mloop.tracking.entities import RunStatus
from mloop.tracking.run import RunContext
from mloop.tuning.journal import study_lock, worker_id, worker_is_dead
from mloop.tuning.space import Dimension
from mloop.tuning.study import RUN_ID, WORKER
from mloop.tuning.trial import Trial, TrialPruned, objective_value

STATE_TAG = "mloop.tune.state"
# Trial ids this process is evaluating now (any thread); its own other running trials were left by a call
# that was interrupted (Ctrl-C in a notebook) and are abandoned like a dead process's.
_running_here: set[tuple[str, int]] = set()
_POLL_SECONDS = 0.5


@dataclass
class Worker:
    """What one process needs to run trials of a study."""

    client: TrackingClient
    db: Any
    study: Any  # optuna.Study
    dims: dict[str, Dimension]
    metric: str
    n_trials: int | None
    deadline: float  # time.time() after which no trial starts
    run_id: str  # the study's run, parent of every trial's run
    experiment_id: str

    def work(self, objective: Callable[[Trial], Any]) -> int:
        """Run trials until the study has its ``n_trials`` or the deadline passes; the number run here."""
        done = 0
        self.repair_runs()
        while time.time() < self.deadline:
            claimed = self._claim()
            if claimed is None:
                if self.n_trials is None or not self._others_running():
                    break
                time.sleep(_POLL_SECONDS)  # wait: a dead worker's trial returns to the budget
                continue
            self._run(objective, *claimed)
            done += 1
        return done

    def _claim(self) -> tuple[Any, RunContext] | None:
        with study_lock(self.db, self.study.study_name):
            trials = self.study.get_trials(deepcopy=False)
            abandoned = [t for t in trials if t.state.name == "RUNNING" and self._abandoned(t)]
            for trial in abandoned:
                self._reclaim(trial)
            if abandoned:
                trials = self.study.get_trials(deepcopy=False)
            used = sum(t.state.name in ("COMPLETE", "PRUNED", "RUNNING") for t in trials)
            if self.n_trials is not None and used >= self.n_trials:
                return None
            trial = self.study.ask()
            _running_here.add((self.db.url, trial._trial_id))
            storage = self.study._storage
            storage.set_trial_system_attr(trial._trial_id, WORKER, worker_id())
            run = self.client.start_run(experiment_id=self.experiment_id, name=f"trial-{trial.number}",
                                        parent=self.run_id, tags={"mloop.tune.study": self.study.study_name,
                                                                  "mloop.tune.trial": str(trial.number)})
            storage.set_trial_system_attr(trial._trial_id, RUN_ID, run.run_id)
        return trial, run

    def _abandoned(self, trial: Any) -> bool:
        """Whether a running trial's worker is gone. Called under the study's lock, where every live worker
        has finished claiming: a trial without its worker or its run lost them in a crash mid-claim."""
        owner, run_id = trial.system_attrs.get(WORKER), trial.system_attrs.get(RUN_ID)
        if not owner or not run_id or worker_is_dead(owner):
            return True
        if owner == worker_id() and (self.db.url, trial._trial_id) not in _running_here:  # an interrupted call's
            return True
        try:
            return self.client.repo.get_run(run_id).status != RunStatus.RUNNING  # reaped: no heartbeat
        except NotFoundError:
            return True

    def _reclaim(self, trial: Any) -> None:
        """Fail an abandoned trial and kill its run, unless its worker finished it meanwhile (the judgement
        was made on a snapshot: a live worker tells Optuna, then ends its run, without the lock)."""
        optuna = self._optuna()
        try:
            self.study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            return
        run_id = trial.system_attrs.get(RUN_ID)
        if run_id is not None:
            try:
                self.client.repo.set_tags(run_id, {STATE_TAG: "abandoned"})
                self.client.repo.end_run(run_id, RunStatus.KILLED)
            except NotFoundError:
                pass

    def _others_running(self) -> bool:
        return any(t.state.name == "RUNNING" for t in self.study.get_trials(deepcopy=False))

    def _run(self, objective: Callable[[Trial], Any], otrial: Any, run: RunContext) -> None:
        try:
            self._evaluate(objective, otrial, run)
        finally:
            _running_here.discard((self.db.url, otrial._trial_id))

    def _evaluate(self, objective: Callable[[Trial], Any], otrial: Any, run: RunContext) -> None:
        optuna = self._optuna()
        trial = Trial(otrial, run, {}, self.metric)
        try:
            for name, dim in self.dims.items():
                trial.params[name] = dim.draw(otrial)
            if trial.params:
                run.log_params(trial.params)
            value, metrics = objective_value(objective(trial), self.metric, otrial.number)
        except (TrialPruned, optuna.TrialPruned):
            self._finish(otrial, run, "pruned", optuna.trial.TrialState.PRUNED, RunStatus.KILLED)
            return
        except BaseException as exc:  # the study stops, as Optuna's does; the trial and its run say why
            run.set_tags({"mloop.tune.error": f"{type(exc).__name__}: {exc}"[:1000]})
            status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            self._finish(otrial, run, "failed", optuna.trial.TrialState.FAIL, status)
            raise
        run.log_metrics(metrics, step=trial.last_step or 0)
        if math.isnan(value):  # a diverged trial: failed, and the study goes on (as in Optuna)
            self._finish(otrial, run, "failed", optuna.trial.TrialState.FAIL, RunStatus.FAILED)
        else:
            self._finish(otrial, run, "complete", optuna.trial.TrialState.COMPLETE, RunStatus.FINISHED, value)

    def _finish(self, otrial: Any, run: RunContext, label: str, state: Any, status: RunStatus,
                value: float | None = None) -> None:
        """Make the run's record durable, then tell Optuna, then end the run: a kill between the last two
        leaves a finished trial with a running run, which ``repair_runs`` ends (a kill before telling leaves a
        running trial, reclaimed as abandoned)."""
        run.set_tags({STATE_TAG: label})
        run.flush()
        try:
            told = self.study.tell(otrial, value, state=state, skip_if_finished=True).state == state
        except self._optuna().exceptions.UpdateFinishedTrialError:
            told = False
        if not told:  # another worker took the trial for abandoned (this one stalled past the heartbeat timeout)
            run.set_tags({STATE_TAG: "abandoned"})
            status = RunStatus.KILLED
        run.end(status)

    def repair_runs(self) -> None:
        """End the runs of finished trials whose worker died before ending them."""
        statuses = {"COMPLETE": RunStatus.FINISHED, "PRUNED": RunStatus.KILLED, "FAIL": RunStatus.FAILED}
        for trial in self.study.get_trials(deepcopy=False):
            owner, run_id = trial.system_attrs.get(WORKER), trial.system_attrs.get(RUN_ID)
            if trial.state.name not in statuses or not owner or not run_id or not worker_is_dead(owner):
                continue
            try:
                if self.client.repo.get_run(run_id).status == RunStatus.RUNNING:
                    self.client.repo.end_run(run_id, statuses[trial.state.name])
            except NotFoundError:
                pass

    @staticmethod
    def _optuna() -> Any:
        from mloop._util.optional import require

        return require("optuna", extra="tune")

