"""What an objective receives: the trial's parameters, its run, and ``report()`` for intermediate values."""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

from mloop.errors import InvalidInputError, MloopError
from mloop.tracking.run import RunContext


class TrialPruned(MloopError):  # noqa: N818 - the name Optuna users know
    """Raised by ``Trial.report`` when the pruner stops a trial; the objective may raise it itself too."""


class Trial:
    """One trial of a study, handed to the objective.

    ``params`` holds the values drawn from the space; ``suggest_float``, ``suggest_int`` and
    ``suggest_categorical`` draw more (define-by-run), as on an Optuna trial, and log them as params of
    the trial's run. ``report(value, step)`` logs an intermediate value as a metric step and raises
    ``TrialPruned`` when the study's pruner says the trial is hopeless. ``run`` is the trial's own run:
    log anything there; ``log_model(model)`` keeps a model for ``Study.register_best``.

    >>> def objective(trial):
    ...     x = trial.params["x"]
    ...     return (x - 2) ** 2
    """

    def __init__(self, optuna_trial: Any, run: RunContext, params: dict[str, Any], metric: str) -> None:
        self.number: int = optuna_trial.number
        self.run = run
        self.params = params
        self.metric = metric
        self._trial = optuna_trial
        self.last_step: int | None = None

    def __repr__(self) -> str:
        return f"<Trial {self.number} {self.params}>"

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        """A float in [low, high] (log-uniform with ``log=True``), logged as a param."""
        return self._logged(name, self._trial.suggest_float(name, low, high, step=step, log=log))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        """An int in [low, high], logged as a param."""
        return self._logged(name, self._trial.suggest_int(name, low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        """One of ``choices``, logged as a param."""
        return self._logged(name, self._trial.suggest_categorical(name, choices))

    def _logged(self, name: str, value: Any) -> Any:
        if name not in self.params or self.params[name] != value:
            self.params[name] = value
            self.run.log_params({name: value})
        return value

    def log_model(self, model: Any, **kwargs: Any) -> Any:
        """Save ``model`` under this trial's run (at ``model``) for ``Study.register_best`` (see ``log_model``)."""
        from mloop.registry import log_model

        return log_model(self.run, model, None, **kwargs)

    def report(self, value: float, step: int) -> None:
        """Log ``value`` as the metric's point at ``step``; raise ``TrialPruned`` when the pruner stops here."""
        number = _as_value(value, f"report(value) of trial {self.number}")
        if isinstance(step, bool) or not isinstance(step, Integral) or step < 0:
            raise InvalidInputError(field="step", value=step, expected="a whole number >= 0")
        step = int(step)
        self.run.log_metric(self.metric, number, step=step)
        self.last_step = step if self.last_step is None else max(step, self.last_step)
        if math.isnan(number):
            return
        self._trial.report(number, step)
        if self._trial.should_prune():
            raise TrialPruned(f"Trial {self.number} was pruned at step {step} ({self.metric} = {number:g}).")


def _as_value(value: Any, field: str) -> float:
    try:
        if not isinstance(value, bool):
            return float(value)
    except (TypeError, ValueError):
        pass
    raise InvalidInputError(field=field, value=value, expected="a number")


def objective_value(result: Any, metric: str, number: int) -> tuple[float, dict[str, float]]:
    """The value an objective returned, and the metrics to log: a number, or a dict holding ``metric``."""
    if isinstance(result, dict):
        if metric not in result:
            raise InvalidInputError(
                field="objective", value=sorted(result)[:10],
                expected=f"a number, or a dict of metrics holding the study's metric '{metric}' (trial {number})")
        metrics = {str(k): _as_value(v, f"objective's metric '{k}'") for k, v in result.items()}
        return metrics[metric], metrics
    value = _as_value(result, f"objective's return value (trial {number})")
    return value, {metric: value}
