"""A study as mloop sees it: an Optuna study in the metadata database, with a run and one child run per trial."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from mloop._util.optional import require
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.store.sql.engine import Database, open_database
from mloop.tuning.journal import open_storage

# Where mloop keeps its links in Optuna's own records (system attributes of the study and of each trial).
RUN_ID = "mloop:run_id"  # the study's run; on a trial, the trial's run
METRIC = "mloop:metric"  # the metric the objective's value is logged as
WORKER = "mloop:worker"  # the host:pid running a trial
_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def storage_for(settings: Settings) -> tuple[Database, Any]:
    """The metadata database of ``settings`` and the Optuna storage over it."""
    if settings.remote:
        raise InvalidInputError(
            field="tracking_uri", value=settings.tracking_uri,
            expected="no tracking server for tuning: a study needs the metadata database itself "
                     "(set MLOOP_DB_URL to the database the server uses)")
    db = open_database(settings.db_url)
    return db, open_storage(db)


class Study:
    """A study: its trials, the best one, and its best model registered in one call.

    >>> import mloop, tempfile
    >>> _ = mloop.configure(home=tempfile.mkdtemp())
    >>> study = mloop.tune(lambda t: (t.params["x"] - 2) ** 2, {"x": ("float", -10, 10)}, n_trials=5, study="doc")
    >>> len(study.trials_frame())
    5
    """

    def __init__(self, optuna_study: Any, settings: Settings) -> None:
        self.optuna = optuna_study
        self.settings = settings
        self.name: str = optuna_study.study_name
        attrs = optuna_study._storage.get_study_system_attrs(optuna_study._study_id)
        self.run_id: str | None = attrs.get(RUN_ID)
        self.metric: str = attrs.get(METRIC, "objective")

    def __repr__(self) -> str:
        return f"<Study {self.name} {len(self.optuna.trials)} trials>"

    @property
    def direction(self) -> str:
        return self.optuna.direction.name.lower()

    @property
    def best_trial(self) -> Any:
        """The best finished trial (an Optuna ``FrozenTrial``); NotFoundError when none has finished."""
        try:
            return self.optuna.best_trial
        except ValueError as exc:
            raise NotFoundError(f"Study '{self.name}' has no completed trial yet.", field="study") from exc

    @property
    def best_value(self) -> float:
        return float(self.best_trial.value)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    @property
    def best_run_id(self) -> str:
        """The run of the best trial."""
        return str(self.best_trial.system_attrs[RUN_ID])

    def trials_frame(self) -> pd.DataFrame:
        """One row per trial: number, state, value, run_id, start, end, duration, then ``params.*``."""
        return trials_frame(self.optuna.get_trials(deepcopy=False))

    def register_best(self, name: str, model: Any = None, *, artifact_path: str = "model", description: str = "",
                      tags: dict[str, Any] | None = None, **log_options: Any) -> Any:
        """Register the best trial's model as a new version of ``name``: the one the objective logged
        (``trial.log_model(model)``), or ``model`` (refit on the best params, say) saved under the best run.
        ``log_options`` (``input_example``, ``training_data``...) go to ``mloop.registry.log_model``."""
        from mloop.registry import registry_for
        from mloop.registry._log import log_model_to_run

        best = self.best_trial
        all_tags = {"mloop.tune.study": self.name, "mloop.tune.trial": str(best.number), **(tags or {})}
        if model is not None:
            return log_model_to_run(self.settings, self.best_run_id, model, name, artifact_path=artifact_path,
                                    description=description, tags=all_tags, **log_options)
        source = f"runs:/{self.best_run_id}/{artifact_path}"
        try:
            return registry_for(self.settings).register(name, source, description=description, tags=all_tags)
        except NotFoundError as exc:
            raise NotFoundError(
                f"The best trial ({best.number}) of study '{self.name}' has no model at '{artifact_path}' of its "
                f"run {self.best_run_id}: log one in the objective with trial.log_model(model), or pass "
                f"model= ({exc})", field="artifact_path") from exc

def trials_frame(trials: list[Any]) -> pd.DataFrame:
    """Trials as a DataFrame (see ``Study.trials_frame``)."""
    rows = []
    for t in trials:
        start, end = utc(t.datetime_start), utc(t.datetime_complete)
        row = {"number": t.number, "state": t.state.name.lower(), "value": t.value,
               "run_id": t.system_attrs.get(RUN_ID), "start": start, "end": end,
               "duration_s": (end - start).total_seconds() if start and end else None}
        row.update({f"params.{k}": v for k, v in t.params.items()})
        rows.append(row)
    columns = ["number", "state", "value", "run_id", "start", "end", "duration_s"]
    return pd.DataFrame(rows, columns=columns + sorted({c for r in rows for c in r} - set(columns)))


def utc(moment: datetime | None) -> datetime | None:
    """Optuna's trial times are naive local times: the same instants, in UTC and aware."""
    return moment.astimezone(UTC) if moment is not None else None


def load_study(name: str, settings: Settings | None = None) -> Study:
    """The stored study ``name``; NotFoundError (naming the known ones) when there is none."""
    optuna = require("optuna", extra="tune")
    settings = settings or _sdk_settings()
    _, storage = storage_for(settings)
    try:
        return Study(optuna.load_study(study_name=name, storage=storage), settings)
    except KeyError as exc:
        known = [s.study_name for s in storage.get_all_studies()][:20]
        raise NotFoundError(f"No study named '{name}'. Known: {known}", field="study") from exc


def list_studies(settings: Settings | None = None) -> list[dict[str, Any]]:
    """A summary of each stored study: name, direction, metric, run, trial counts by state, best value."""
    settings = settings or _sdk_settings()
    _, storage = storage_for(settings)
    out = []
    for frozen in storage.get_all_studies():
        trials = storage.get_all_trials(frozen._study_id, deepcopy=False)
        counts = {s.lower(): 0 for s in _STATES}
        for t in trials:
            counts[t.state.name.lower()] += 1
        best = _best(trials, frozen.direction.name)
        out.append({"name": frozen.study_name, "direction": frozen.direction.name.lower(),
                    "metric": frozen.system_attrs.get(METRIC, "objective"), "run_id": frozen.system_attrs.get(RUN_ID),
                    "trials": counts, "best_value": best.value if best else None,
                    "best_trial": best.number if best else None})
    return out


def _sdk_settings() -> Settings:
    """The settings ``mloop.configure`` chose (or the environment's), as ``mloop.tune`` uses them."""
    from mloop._sdk import client

    return client().settings


def _best(trials: list[Any], direction: str) -> Any:
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    if not done:
        return None
    return (min if direction == "MINIMIZE" else max)(done, key=lambda t: t.value)
