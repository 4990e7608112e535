"""Metrics per group with confidence intervals, computed for every group at once (no loop over rows).

Intervals (95%), chosen so that a slice of a few rows shows a wide interval rather than an alarming number:

- accuracy: Wilson score interval (a proportion);
- F1: percentile bootstrap over the group's confusion matrix (its cells drawn again, multinomially, 400 times:
  the exact row bootstrap of a metric that depends only on those cells);
- AUC (binary): Hanley and McNeil's standard error, normal interval clipped to [0, 1];
- MAE and RMSE: Student-t interval on the mean absolute / squared error (RMSE: the square root of the MSE's).

>>> import numpy as np
>>> t = classification_metrics(np.zeros(3, dtype=int), 1, np.array([1, 0, 1]), np.array([1, 0, 0]), None, 1, [0, 1])
>>> round(float(t["accuracy"].iloc[0]), 4), round(float(t["f1"].iloc[0]), 4)
(0.6667, 0.6667)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["CI_METHODS", "classification_metrics", "confusion_counts", "regression_metrics", "wilson"]

Z = 1.959963984540054
BOOTSTRAP = 400
CI_METHODS = {"accuracy": "wilson", "f1": "bootstrap (confusion matrix, 400 draws)", "auc": "hanley-mcneil",
              "mae": "student-t", "rmse": "student-t (on MSE)"}


def wilson(successes: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 95% Wilson score interval of ``successes`` out of ``n`` (NaN where n is 0).

    >>> low, high = wilson(np.array([3]), np.array([3]))
    >>> round(float(low[0]), 3), float(high[0])
    (0.439, 1.0)
    """
    n = n.astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
        half = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def confusion_counts(groups: np.ndarray, n_groups: int, y_true: np.ndarray, y_pred: np.ndarray,
                     classes: list[Any]) -> np.ndarray:
    """Counts of shape (groups, classes, classes): [g, true, predicted]; ``groups`` are codes 0..n_groups-1."""
    index = pd.Index(classes)
    k = len(classes)
    t, p = index.get_indexer(y_true), index.get_indexer(y_pred)
    flat = (groups.astype("int64") * k + t) * k + p
    return np.bincount(flat, minlength=n_groups * k * k).reshape(n_groups, k, k)


def _f1(cm: np.ndarray, positive: int | None) -> np.ndarray:
    """F1 from confusion arrays (..., k, k): of the ``positive`` class (binary), else the macro average over
    the classes that occur in the group's labels or predictions (as scikit-learn does on that subset)."""
    diag = np.diagonal(cm, axis1=-2, axis2=-1).astype("float64")
    support = cm.sum(axis=-1) + cm.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, 2 * diag / np.maximum(support, 1), 0.0)
    if positive is not None:
        return per_class[..., positive]
    present = support > 0
    return np.where(present.any(-1), (per_class * present).sum(-1) / np.maximum(present.sum(-1), 1), np.nan)


def _f1_interval(cm: np.ndarray, positive: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    g, k, _ = cm.shape
    n = cm.reshape(g, -1).sum(-1)
    shares = cm.reshape(g, -1) / np.maximum(n, 1)[:, None]
    shares[n == 0] = 1.0 / (k * k)
    draws = rng.multinomial(n[:, None], shares[:, None, :], size=(g, BOOTSTRAP)).reshape(g, BOOTSTRAP, k, k)
    f1 = _f1(draws, positive)
    low, high = np.nanpercentile(f1, [2.5, 97.5], axis=1) if g else (np.zeros(0), np.zeros(0))
    return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


def classification_metrics(groups: np.ndarray, n_groups: int, y_true: np.ndarray, y_pred: np.ndarray,
                           score: np.ndarray | None, positive: Any, classes: list[Any],
                           seed: int = 0) -> pd.DataFrame:
    """Count, accuracy, F1 and (binary with scores) AUC per group code, each with ``_low`` / ``_high``."""
    cm = confusion_counts(groups, n_groups, y_true, y_pred, classes)
    count = cm.sum(axis=(1, 2))
    correct = np.trace(cm, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"count": count, "accuracy": correct / count}
    out["accuracy_low"], out["accuracy_high"] = wilson(correct, count)
    pos = classes.index(positive) if positive is not None else None
    out["f1"] = _f1(cm, pos)
    out["f1_low"], out["f1_high"] = _f1_interval(cm, pos, np.random.default_rng(seed))
    if score is not None and positive is not None:
        out.update(_auc(groups, n_groups, np.asarray(y_true) == positive, score))
    return pd.DataFrame(out)


def _auc(groups: np.ndarray, n_groups: int, is_pos: np.ndarray, score: np.ndarray) -> dict[str, np.ndarray]:
    """Mann-Whitney AUC per group from within-group ranks (ties averaged, as roc_auc_score counts them)."""
    ranks = pd.Series(score).groupby(groups).rank(method="average").to_numpy()
    n1 = np.bincount(groups, weights=is_pos, minlength=n_groups)
    n0 = np.bincount(groups, minlength=n_groups) - n1
    r1 = np.bincount(groups, weights=ranks * is_pos, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where((n1 > 0) & (n0 > 0), (r1 - n1 * (n1 + 1) / 2) / (n1 * n0), np.nan)
        q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
        se = np.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0))
    return {"auc": auc, "auc_low": np.clip(auc - Z * se, 0, 1), "auc_high": np.clip(auc + Z * se, 0, 1)}


def regression_metrics(groups: np.ndarray, n_groups: int, y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """Count, MAE, RMSE (with intervals) and the residual's mean and spread per group code."""
    residual = np.asarray(y_pred, dtype="float64") - np.asarray(y_true, dtype="float64")
    frame = pd.DataFrame({"g": groups, "abs": np.abs(residual), "sq": residual**2, "res": residual})
    by = frame.groupby("g")
    agg = by.agg(count=("abs", "size"), mae=("abs", "mean"), abs_sd=("abs", "std"), mse=("sq", "mean"),
                 sq_sd=("sq", "std"), residual_mean=("res", "mean"), residual_sd=("res", "std"))
    quantiles = by["res"].quantile([0.05, 0.5, 0.95]).unstack()
    agg = agg.reindex(range(n_groups))
    n = agg["count"].fillna(0).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(0.975, np.maximum(n - 1, 1))
        half_abs = t * agg["abs_sd"].to_numpy() / np.sqrt(n)
        half_sq = t * agg["sq_sd"].to_numpy() / np.sqrt(n)
    mae, mse = agg["mae"].to_numpy(), agg["mse"].to_numpy()
    out = pd.DataFrame({"count": n.astype("int64"), "mae": mae, "mae_low": np.maximum(mae - half_abs, 0),
                        "mae_high": mae + half_abs, "rmse": np.sqrt(mse),
                        "rmse_low": np.sqrt(np.maximum(mse - half_sq, 0)), "rmse_high": np.sqrt(mse + half_sq),
                        "residual_mean": agg["residual_mean"].to_numpy(), "residual_sd": agg["residual_sd"].to_numpy()})
    for q, name in ((0.05, "residual_p05"), (0.5, "residual_p50"), (0.95, "residual_p95")):
        out[name] = quantiles[q].reindex(range(n_groups)).to_numpy()
    return out
