"""``mloop.autolog()``: scikit-learn estimators log their params, training metrics and model by themselves.

Only the outermost ``fit`` is logged (a Pipeline's inner steps are part of it).
Logging never breaks training: a failure to log is a warning, the fit goes on.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from mloop.errors import ConflictError

log = logging.getLogger("mloop.autolog")
_state = threading.local()
_patched: dict[type, Any] = {}


def enable_sklearn(log_models: bool = True, disable: bool = False) -> None:
    """Patch every scikit-learn estimator's ``fit`` (``disable=True`` undoes it).

    >>> enable_sklearn(disable=True)
    """
    if disable:
        for cls, original in _patched.items():
            cls.fit = original
        _patched.clear()
        return
    for cls in _estimator_classes():
        if "fit" in cls.__dict__ and cls not in _patched:
            _patched[cls] = cls.__dict__["fit"]
            cls.fit = _wrap(cls.__dict__["fit"], log_models)


def _estimator_classes() -> list[type]:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    return [cls for _, cls in all_estimators()] + [Pipeline, GridSearchCV, RandomizedSearchCV]


def _wrap(original: Any, log_models: bool) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_state, "depth", 0) > 0:
            return original(self, *args, **kwargs)
        _state.depth = 1
        try:
            result = original(self, *args, **kwargs)
            X = args[0] if args else kwargs.get("X")
            y = args[1] if len(args) > 1 else kwargs.get("y")
            try:
                _log_fit(self, X, y, log_models)
            except Exception as exc:  # logging must never break training
                log.warning("mloop autolog could not log %s: %s", type(self).__name__, exc)
            return result
        finally:
            _state.depth = 0

    return fit


def _log_fit(estimator: Any, X: Any, y: Any, log_models: bool) -> None:
    import mloop

    run = mloop.active_run()
    created = run is None
    if run is None:
        run = mloop.start_run(name=type(estimator).__name__.lower())
    try:
        params = {k: v for k, v in estimator.get_params(deep=True).items()
                  if isinstance(v, int | float | str | bool) or v is None}
        try:
            run.log_params({k: ("None" if v is None else v) for k, v in params.items()})
        except ConflictError as exc:
            log.warning("mloop autolog: %s", exc.message)
        run.set_tag("estimator_class", f"{type(estimator).__module__}.{type(estimator).__name__}")
        if y is not None:
            run.log_metrics(_training_metrics(estimator, X, y))
        if log_models:
            _log_model_artifact(run, estimator)
    finally:
        if created:
            run.end()


def _training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    if not hasattr(estimator, "predict"):
        return {}
    predicted = estimator.predict(X)
    if is_regressor(estimator):
        return {"training_mae": float(metrics.mean_absolute_error(y, predicted)),
                "training_rmse": float(metrics.root_mean_squared_error(y, predicted)),
                "training_r2": float(metrics.r2_score(y, predicted))}
    if is_classifier(estimator):
        return {"training_accuracy": float(metrics.accuracy_score(y, predicted)),
                "training_f1": float(metrics.f1_score(y, predicted, average="weighted")),
                "training_precision": float(metrics.precision_score(y, predicted, average="weighted",
                                                                    zero_division=0)),
                "training_recall": float(metrics.recall_score(y, predicted, average="weighted"))}
    return {}


def _log_model_artifact(run: Any, estimator: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            from mloop._util.optional import import_skops

            sio = import_skops()
            path = Path(tmp) / "model.skops"
            sio.dump(estimator, path)
        except ImportError:
            import cloudpickle

            path = Path(tmp) / "model.pkl"
            path.write_bytes(cloudpickle.dumps(estimator))
        run.log_artifact(path, f"model/{path.name}")
