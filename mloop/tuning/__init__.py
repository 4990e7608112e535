"""Hyperparameter search on Optuna: studies in mloop's metadata database, one child run per trial.

Optuna is an optional dependency (``pip install 'mloop[tune]'``), imported when a search starts.
"""

from mloop._util.lazy import lazy_getattr

_LAZY = {
    "tune": "mloop.tuning.search",
    "Study": "mloop.tuning.study",
    "load_study": "mloop.tuning.study",
    "list_studies": "mloop.tuning.study",
    "Trial": "mloop.tuning.trial",
    "TrialPruned": "mloop.tuning.trial",
    "parse_space": "mloop.tuning.space",
    "Dimension": "mloop.tuning.space",
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_getattr("mloop.tuning", _LAZY, globals())
