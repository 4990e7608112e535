"""The model families an AutoML search tries, and how the winner is rebuilt as a plain model.

FLAML searches; the model mloop registers is the library's own estimator (``LGBMClassifier``,
``XGBRegressor``, ``HistGradientBoostingClassifier``) or a scikit-learn pipeline (linear models), refit with
the winning configuration, never FLAML's wrapper: so it loads without ``trusted=True`` under mloop's
allow-list and serves like any other model.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FAMILIES", "available", "rebuild"]

# FLAML learner name -> (package it needs, task it serves: None for both)
FAMILIES: dict[str, tuple[str, str | None]] = {
    "lgbm": ("lightgbm", None),
    "xgboost": ("xgboost", None),
    "histgb": ("sklearn", None),
    "lrl1": ("sklearn", "classification"),
    "enet": ("sklearn", "regression"),
}
LINEAR = ("lrl1", "enet")


def available(task: str, X: pd.DataFrame, y: pd.Series) -> tuple[list[str], list[str]]:
    """The learners to try here, and notes on the ones left out (not installed, or unfit for the data)."""
    learners, notes = [], []
    for name, (package, only) in FAMILIES.items():
        if only is not None and only != task:
            continue
        if importlib.util.find_spec(package) is None:
            notes.append(f"{name}: {package} is not installed")
        elif name == "xgboost" and task == "classification" and not _codes_already(y):
            notes.append("xgboost: its classifier answers class codes, not labels such as these; left out")
        elif name in LINEAR and X.select_dtypes("number").isna().to_numpy().any():
            notes.append(f"{name}: linear models need complete numeric columns; left out")
        else:
            learners.append(name)
    return learners, notes


def _codes_already(y: pd.Series) -> bool:
    if not pd.api.types.is_integer_dtype(y.dtype):
        return False
    values = np.sort(y.unique())
    return bool(np.array_equal(values, np.arange(len(values))))


def rebuild(learner: str, flaml_model: Any, task: str, X: pd.DataFrame) -> Any:
    """An unfitted plain estimator (or pipeline) with the configuration FLAML found for ``learner``."""
    cls = flaml_model.estimator_class
    accepted = cls().get_params()
    params = {k: _plain(v) for k, v in flaml_model.params.items() if k in accepted}
    if learner == "xgboost":
        params["enable_categorical"] = True
    if learner == "histgb":
        params["categorical_features"] = "from_dtype"
    if learner in LINEAR:
        return _linear_pipeline(cls(**params), X)
    return cls(**params)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _linear_pipeline(estimator: Any, X: pd.DataFrame) -> Any:
    """Scaled numbers and one-hot categories (unknown ones ignored) in front of a linear model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in X.columns if c not in categorical]
    encode = make_pipeline(SimpleImputer(strategy="most_frequent"),
                           OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    prep = ColumnTransformer([("num", StandardScaler(), numeric), ("cat", encode, categorical)])
    return Pipeline([("prep", prep), ("model", estimator)])
