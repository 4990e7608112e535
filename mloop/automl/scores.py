"""Holdout scores of the registered model, computed with scikit-learn's metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["holdout_scores"]


def holdout_scores(model: Any, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    """Classification: accuracy, macro F1, log loss and ROC AUC (one-vs-rest when multiclass); regression:
    R², RMSE and MAE.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}); y = pd.Series([0.0, 2.0, 4.0, 6.0])
    >>> holdout_scores(LinearRegression().fit(X, y), X, y, "regression")["r2"]
    1.0
    """
    from sklearn import metrics

    if task == "regression":
        pred = np.asarray(model.predict(X), dtype="float64")
        return {"r2": float(metrics.r2_score(y, pred)),
                "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
                "mae": float(metrics.mean_absolute_error(y, pred))}
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    truth = y.to_numpy()
    out = {"accuracy": float(metrics.accuracy_score(truth, pred)),
           "f1_macro": float(metrics.f1_score(truth, pred, average="macro")),
           "log_loss": float(metrics.log_loss(truth, proba, labels=classes))}
    if y.nunique() == 2 and len(classes) == 2:
        out["roc_auc"] = float(metrics.roc_auc_score(truth == classes[1], proba[:, 1]))
    elif y.nunique() > 2:
        out["roc_auc"] = float(metrics.roc_auc_score(truth, proba, multi_class="ovr", labels=classes))
    return out
