"""Checking and shaping the data an AutoML search trains on.

Text, boolean-as-text and category columns become pandas categories (LightGBM, XGBoost and scikit-learn's
HistGradientBoosting read them natively; the model's signature keeps the categories, so serving sends the same
codes); numbers stay numbers with their nulls (the tree libraries route nulls themselves). Date-time columns are
left out, with a note: a model would learn the calendar of its training set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mloop.analysis._frame import check_column, infer_task
from mloop.errors import InvalidInputError

__all__ = ["Prepared", "prepare", "split"]

MIN_ROWS = 20


@dataclass(slots=True)
class Prepared:
    X: pd.DataFrame
    y: pd.Series
    task: str
    notes: list[str] = field(default_factory=list)


def prepare(frame: pd.DataFrame, target: Any, task: str | None) -> Prepared:
    """Features and target ready for the search; rows without a target are left out (and counted in a note)."""
    check_column(frame, target, "target")
    known = frame[target].notna().to_numpy()
    if not known.any():
        raise InvalidInputError(field="target", value=target, expected="a target column with at least one value "
                                                                        "(every value is null)")
    notes = [] if known.all() else [f"{int((~known).sum())} rows without a target were left out"]
    rows = frame[known]
    if len(rows) < MIN_ROWS:
        raise InvalidInputError(field="data", value=f"{len(rows)} rows", expected=f"at least {MIN_ROWS} labelled rows")
    y = rows[target].reset_index(drop=True)
    task = infer_task(task, y)
    if task == "classification" and y.nunique() < 2:
        raise InvalidInputError(field="target", value=target, expected="at least two classes in the target")
    if task == "regression" and not pd.api.types.is_numeric_dtype(y.dtype):
        raise InvalidInputError(field="target", value=str(y.dtype), expected="a numeric target for regression")
    X, more = _features(rows.drop(columns=[target]).reset_index(drop=True))
    return Prepared(X=X, y=y, task=task, notes=notes + more)


def _features(X: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    notes: list[str] = []
    columns = {}
    for name in X.columns:
        col = X[name]
        if pd.api.types.is_datetime64_any_dtype(col.dtype) or pd.api.types.is_timedelta64_dtype(col.dtype):
            notes.append(f"date-time column '{name}' was left out")
        elif col.isna().all():
            notes.append(f"column '{name}' is empty and was left out")
        elif pd.api.types.is_bool_dtype(col.dtype):
            columns[str(name)] = col.astype("float64")
        elif pd.api.types.is_numeric_dtype(col.dtype):
            columns[str(name)] = col
        else:
            text = col.astype(object).where(col.notna(), None).map(str, na_action="ignore")
            columns[str(name)] = pd.Categorical(text, categories=sorted(text.dropna().unique()))
    if not columns:
        raise InvalidInputError(field="data", value=list(X.columns), expected="at least one usable feature column")
    return pd.DataFrame(columns), notes


def split(prepared: Prepared, holdout: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """A train / holdout split, stratified by class when every class has at least two rows."""
    from sklearn.model_selection import train_test_split

    if not (isinstance(holdout, float | int) and not isinstance(holdout, bool) and 0 < holdout < 0.9):
        raise InvalidInputError(field="holdout", value=holdout, expected="a share of rows between 0 and 0.9")
    y = prepared.y
    stratify = y if prepared.task == "classification" and y.value_counts().min() >= 2 else None
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=holdout, random_state=seed,
                                           stratify=stratify)
    X = prepared.X
    return (X.iloc[idx_train].reset_index(drop=True), X.iloc[idx_test].reset_index(drop=True),
            y.iloc[idx_train].reset_index(drop=True), y.iloc[idx_test].reset_index(drop=True))
