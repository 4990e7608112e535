"""``mloop.analyze``: where a model fails and for whom, before it ships."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from mloop.analysis._frame import check_column, infer_task, load_frame
from mloop.analysis.fairness import fairness_report
from mloop.analysis.metrics import CI_METHODS, classification_metrics, confusion_counts, regression_metrics, wilson
from mloop.analysis.predict import model_inputs, predictions, resolve_model
from mloop.analysis.result import Analysis, summarize
from mloop.analysis.slices import slice_keys, slice_name, slice_specs
from mloop.errors import InvalidInputError

__all__ = ["analyze"]

CALIBRATION_BINS = 10


def analyze(model_or_uri: Any, data: Any, *, label: str, slices: list[Any] | None = None,
            sensitive: list[str] | None = None, task: str | None = None, positive: Any = None,
            bins: int = 4, min_slice_size: int = 30, attach: bool = True, registry: Any = None) -> Analysis:
    """Metrics overall and per slice with counts and 95% intervals, calibration and confusion (classifiers),
    residuals by slice (regressors) and Fairlearn's group fairness metrics for ``sensitive`` features.

    ``slices`` holds column names and (column, column) pairs; numeric columns with many values are cut into
    ``bins`` quantile bins, and nulls form a ``(missing)`` slice. ``positive`` is the class whose selection
    rate fairness compares (default: the model's last class). Rows whose label is null are left out. When the
    model is a registered version (a ``models:/`` URI) and ``attach`` is true, the analysis is stored with it
    (``attach_analysis``), where a selection rule reads it as ``analysis.<key>``.

    >>> import pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> df = pd.DataFrame({"x": [0.0, 1, 2, 3, 4, 5], "g": list("aabbab"), "y": [0, 0, 0, 1, 1, 1]})
    >>> model = LogisticRegression().fit(df[["x"]], df["y"])
    >>> result = analyze(model, df, label="y", slices=["g"])
    >>> result.overall["metrics"]["accuracy"]["value"], [s["value"] for s in result.slices]
    (1.0, ['a', 'b'])
    """
    frame = load_frame(data)
    check_column(frame, label, "label")
    specs = slice_specs(frame, slices)
    sensitive_cols = [spec[0] for spec in _sensitive_specs(frame, sensitive)]
    _check_sizes(bins, min_slice_size)
    frame = _labelled(frame, label)
    model, model_name = resolve_model(model_or_uri, registry)
    y_true = frame[label].to_numpy()
    task = infer_task(task, frame[label])
    labels, proba = predictions(model, model_inputs(model, frame, label), want_proba=task == "classification")
    specs += [(c,) for c in sensitive_cols if (c,) not in specs]
    keys = {slice_name(s): slice_keys(frame, s, bins=bins) for s in specs}
    result = (_classification(y_true, labels, proba, keys, positive) if task == "classification"
              else _regression(y_true, labels, keys))
    chosen_positive = result.pop("positive", None)
    analysis = Analysis(task=task, label=label, model=model_name, n_rows=len(frame), min_slice_size=min_slice_size,
                        created=datetime.now(UTC).isoformat(timespec="seconds"), **result)
    if sensitive_cols:
        _add_fairness(analysis, keys, y_true, labels, chosen_positive, sensitive_cols)
    analysis.summary = summarize(analysis)
    if attach and getattr(model, "name", None) and getattr(model, "version", None):
        from mloop.analysis.store import attach_analysis

        attach_analysis(analysis, model.name, model.version, registry=registry)
    return analysis


def _sensitive_specs(frame: pd.DataFrame, sensitive: Any) -> list[tuple[str, ...]]:
    specs = slice_specs(frame, sensitive)
    crossed = [s for s in specs if len(s) != 1]
    if crossed:
        raise InvalidInputError(field="sensitive", value=crossed[0], expected="single column names")
    return specs


def _check_sizes(bins: Any, min_slice_size: Any) -> None:
    for name, value, low in (("bins", bins, 2), ("min_slice_size", min_slice_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInputError(field=name, value=value, expected=f"a whole number >= {low}")


def _labelled(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    known = frame[label].notna()
    if not known.any():
        raise InvalidInputError(field="label", value=label, expected="a label column with at least one value")
    return frame if known.all() else frame[known.to_numpy()]


def _codes(keys: pd.Series) -> tuple[np.ndarray, list[Any]]:
    codes, uniques = pd.factorize(keys, sort=True)
    return codes, list(uniques)


def _metric_records(table: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    out = []
    for row in table.to_dict("records"):
        out.append({name: {"value": _num(row[name]), "low": _num(row[f"{name}_low"]),
                           "high": _num(row[f"{name}_high"])} for name in names if name in row})
    return out


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _slices(keys: dict[str, pd.Series], compute: Any, names: list[str], extra: tuple[str, ...] = ()) -> list[Any]:
    slices = []
    for name, series in keys.items():
        codes, values = _codes(series)
        table = compute(codes, len(values))
        for value, row, metrics in zip(values, table.to_dict("records"), _metric_records(table, names), strict=True):
            entry = {"slice": name, "value": str(value), "count": int(row["count"]), "metrics": metrics}
            entry.update({k: _num(row[k]) for k in extra})
            slices.append(entry)
    return slices


def _classification(y_true: np.ndarray, labels: np.ndarray, proba: pd.DataFrame | None,
                    keys: dict[str, pd.Series], positive: Any) -> dict[str, Any]:
    classes = _classes(y_true, labels, proba)
    if positive is None:
        positive = classes[-1]
    elif positive not in classes:
        raise InvalidInputError(field="positive", value=positive, expected=f"one of the classes {classes}")
    binary = len(classes) <= 2
    score = proba[positive].to_numpy(dtype="float64") if binary and proba is not None else None
    names = ["accuracy", "f1"] + (["auc"] if score is not None else [])

    def compute(codes: np.ndarray, n: int) -> pd.DataFrame:
        return classification_metrics(codes, n, y_true, labels, score,
                                      positive if binary else None, classes)

    overall = compute(np.zeros(len(y_true), dtype="int64"), 1)
    cm = confusion_counts(np.zeros(len(y_true), dtype="int64"), 1, y_true, labels, classes)[0]
    return {"primary_metric": "accuracy", "ci_methods": {k: CI_METHODS[k] for k in names},
            "overall": {"count": len(y_true), "metrics": _metric_records(overall, names)[0]},
            "slices": _slices(keys, compute, names),
            "confusion": {"labels": [_plain(c) for c in classes], "matrix": cm.tolist()},
            "calibration": _calibration(score, y_true == positive) if score is not None else None,
            "notes": [] if binary else ["multiclass: F1 is the macro average; no AUC or calibration"],
            "positive": positive}


def _classes(y_true: np.ndarray, labels: np.ndarray, proba: pd.DataFrame | None) -> list[Any]:
    seen = set(pd.unique(y_true).tolist()) | set(pd.unique(labels).tolist())
    if proba is not None:
        seen |= set(proba.columns.tolist())
    return sorted(seen, key=lambda c: (str(type(c)), c))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _calibration(score: np.ndarray, is_pos: np.ndarray) -> list[dict[str, Any]]:
    """Reliability bins: predicted probability of the positive class against how often it was positive."""
    bin_of = np.minimum((score * CALIBRATION_BINS).astype("int64"), CALIBRATION_BINS - 1)
    count = np.bincount(bin_of, minlength=CALIBRATION_BINS)
    positives = np.bincount(bin_of, weights=is_pos, minlength=CALIBRATION_BINS)
    predicted = np.bincount(bin_of, weights=score, minlength=CALIBRATION_BINS)
    low, high = wilson(positives, count)
    out = []
    for i in np.flatnonzero(count):
        out.append({"bin": [i / CALIBRATION_BINS, (i + 1) / CALIBRATION_BINS], "count": int(count[i]),
                    "mean_predicted": float(predicted[i] / count[i]), "observed": float(positives[i] / count[i]),
                    "low": float(low[i]), "high": float(high[i])})
    return out


def _regression(y_true: np.ndarray, predicted: np.ndarray, keys: dict[str, pd.Series]) -> dict[str, Any]:
    names = ["mae", "rmse"]
    residuals = ("residual_mean", "residual_sd", "residual_p05", "residual_p50", "residual_p95")

    def compute(codes: np.ndarray, n: int) -> pd.DataFrame:
        return regression_metrics(codes, n, y_true, predicted)

    overall = compute(np.zeros(len(y_true), dtype="int64"), 1)
    first = overall.to_dict("records")[0]
    return {"primary_metric": "rmse", "ci_methods": {k: CI_METHODS[k] for k in names},
            "overall": {"count": len(y_true), "metrics": _metric_records(overall, names)[0],
                        **{k: _num(first[k]) for k in residuals}},
            "slices": _slices(keys, compute, names, residuals)}


def _add_fairness(analysis: Analysis, keys: dict[str, pd.Series], y_true: np.ndarray, labels: np.ndarray,
                  positive: Any, sensitive: list[str]) -> None:
    if analysis.task != "classification":
        analysis.notes.append("fairness metrics (demographic parity, equalized odds) need a classifier")
        return
    for column in sensitive:
        analysis.fairness[column] = fairness_report(keys[column], y_true, labels, positive)
