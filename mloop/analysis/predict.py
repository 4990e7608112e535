"""The model side of an analysis: load it, pick its input columns, and get labels and class probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInputError

__all__ = ["model_inputs", "predictions", "resolve_model"]


def resolve_model(model_or_uri: Any, registry: Any = None) -> tuple[Any, str]:
    """The model to analyze and how to name it: a URI is loaded from the registry (mloop's trust rules apply)."""
    if isinstance(model_or_uri, str):
        from mloop.analysis.store import registry_or_default
        from mloop.registry import load_model

        return load_model(model_or_uri, client=registry_or_default(registry)), model_or_uri
    if not hasattr(model_or_uri, "predict"):
        raise InvalidInputError(field="model", value=type(model_or_uri).__name__,
                                expected="a model URI such as models:/name@alias, or an object with predict()")
    return model_or_uri, getattr(model_or_uri, "uri", None) or type(model_or_uri).__name__


def model_inputs(model: Any, frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """The columns the model was trained on when it says (signature or ``feature_names_in_``), else all but
    the label; slice and sensitive columns that the model never saw do not reach it."""
    signature = getattr(model, "signature", None)
    names = [c.name for c in signature.inputs] if signature is not None and signature.input_kind == "frame" else None
    if names is None and getattr(model, "feature_names_in_", None) is not None:
        names = [str(c) for c in model.feature_names_in_]
    if names is None:
        return frame.drop(columns=[label])
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise InvalidInputError(field="data", value=missing[:10], expected="the model's input columns in the data")
    return frame[names]


def predictions(model: Any, inputs: pd.DataFrame, want_proba: bool) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Labels, and (when asked and the model has them) class probabilities with one column per class.

    With probabilities, the label is their argmax (what ``predict`` answers for scikit-learn, LightGBM and
    XGBoost classifiers), so the model runs once on the data, not twice.
    """
    if want_proba and _has_proba(model):
        proba = model.predict_proba(inputs)
        if not isinstance(proba, pd.DataFrame):
            classes = list(getattr(model, "classes_", range(np.shape(proba)[1])))
            proba = pd.DataFrame(np.asarray(proba), columns=classes)
        labels = proba.columns.to_numpy()[np.argmax(proba.to_numpy(), axis=1)]
        return labels, proba
    labels = np.asarray(model.predict(inputs))
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return labels, None


def _has_proba(model: Any) -> bool:
    if hasattr(model, "proba_refusal"):
        return model.proba_refusal is None
    return hasattr(model, "predict_proba")
