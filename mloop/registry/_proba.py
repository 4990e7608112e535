"""Class probabilities of a loaded model, for the flavors that have them, with JSON-clean class labels.

A flavor may define ``predict_proba(native, data) -> (matrix, classes)`` itself; otherwise this module
knows how each built-in flavor's native object answers: scikit-learn estimators and pipelines,
XGBoost's classifier wrappers and python_function objects through their ``predict_proba`` and
``classes_``, LightGBM classifiers through the booster's raw probabilities and the class labels
saved with the model.

>>> from sklearn.linear_model import LogisticRegression
>>> model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], ["no", "no", "yes", "yes"])
>>> matrix, classes = predict_proba("sklearn", model, [[0.0], [3.0]])
>>> classes, matrix.shape
(['no', 'yes'], (2, 2))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mloop.registry.flavors import get_flavor

__all__ = ["OUTPUTS", "class_labels", "json_labels", "predict_proba", "proba_refusal"]

# What a predict call can answer: the label, the class probabilities, or both side by side.
OUTPUTS = ("label", "proba", "both")


def json_labels(classes: Any) -> list[Any]:
    """Class labels as plain Python values (numpy ints, floats, strings and bools converted) for JSON."""
    out = []
    for value in np.asarray(classes, dtype=object).tolist():
        out.append(value.item() if isinstance(value, np.generic) else value)
    return out


def proba_refusal(flavor: str, native: Any) -> str | None:
    """Why ``native`` cannot answer class probabilities, in words; None when it can."""
    own = getattr(get_flavor(flavor), "predict_proba", None)
    if own is not None:
        return None
    if flavor == "lightgbm":
        if getattr(native, "classes", None) is None:
            return "it is a LightGBM regressor or a bare Booster (no class labels were saved with it)"
        return None
    if flavor in ("sklearn", "xgboost", "python_function"):
        if callable(getattr(native, "predict_proba", None)):
            return None
        return f"{type(native).__name__} has no predict_proba (it is not a classifier, or it was built without " \
               "probability estimates)"
    return f"the {flavor} flavor answers one output per row; probabilities come from scikit-learn, XGBoost, " \
           "LightGBM or python_function classifiers"


def class_labels(flavor: str, native: Any) -> list[Any] | None:
    """The JSON-clean class labels a model's probabilities are for, when it says them without predicting."""
    if proba_refusal(flavor, native) is not None:
        return None
    classes = getattr(native, "classes", None) if flavor == "lightgbm" else getattr(native, "classes_", None)
    return json_labels(classes) if classes is not None else None


def predict_proba(flavor: str, native: Any, data: Any) -> tuple[np.ndarray, list[Any]]:
    """``(probabilities, classes)``: a (rows, classes) float matrix and the JSON-clean label of each column.

    Callers check ``proba_refusal`` first; a model without probabilities raises TypeError here.
    """
    own = getattr(get_flavor(flavor), "predict_proba", None)
    if own is not None:
        matrix, classes = own(native, data)
        return np.asarray(matrix, dtype="float64"), json_labels(classes)
    reason = proba_refusal(flavor, native)
    if reason is not None:
        raise TypeError(reason)
    if flavor == "lightgbm":
        raw = np.asarray(native.booster.predict(data), dtype="float64")
        matrix = np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw
        return matrix, json_labels(native.classes)
    matrix = np.asarray(native.predict_proba(data), dtype="float64")
    if matrix.ndim == 1:  # a python_function answering P(positive) only
        matrix = np.column_stack([1.0 - matrix, matrix])
    classes = getattr(native, "classes_", None)
    labels = json_labels(classes) if classes is not None else list(range(matrix.shape[1]))
    if len(labels) != matrix.shape[1]:
        raise ValueError(f"the model answers {matrix.shape[1]} probabilities per row for {len(labels)} classes")
    return matrix, labels
