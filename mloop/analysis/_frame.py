"""Reading the data an analysis or an AutoML search works on: a DataFrame, or a Parquet/CSV file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInputError

__all__ = ["TASKS", "check_column", "infer_task", "load_frame"]

TASKS = ("classification", "regression")


def load_frame(data: Any, field: str = "data") -> pd.DataFrame:
    """``data`` as a pandas DataFrame: a DataFrame itself, or a ``.parquet`` / ``.csv`` / ``.tsv`` file path.

    >>> load_frame(pd.DataFrame({"x": [1]})).shape
    (1, 1)
    """
    if isinstance(data, pd.DataFrame):
        if data.columns.has_duplicates:
            dup = data.columns[data.columns.duplicated()].tolist()
            raise InvalidInputError(field=field, value=dup, expected="unique column names")
        return data
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.is_file() and not (path.is_dir() and path.suffix in ("", ".parquet")):
            raise InvalidInputError(field=field, value=str(path), expected="an existing Parquet or CSV file")
        if path.is_dir() or path.suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
        raise InvalidInputError(field=field, value=str(path), expected="a .parquet, .csv or .tsv file")
    raise InvalidInputError(field=field, value=type(data).__name__,
                            expected="a pandas DataFrame or a Parquet/CSV file path")


def check_column(frame: pd.DataFrame, column: Any, field: str) -> str:
    """``column`` if ``frame`` has it, else an error listing the columns it has."""
    if not isinstance(column, str) or column not in frame.columns:
        shown = [str(c) for c in frame.columns[:30]]
        raise InvalidInputError(field=field, value=column, expected=f"a column of the data, one of {shown}")
    return column


def infer_task(task: str | None, y: pd.Series) -> str:
    """``task`` checked, or read from the label: text, booleans and few whole numbers are classes.

    >>> infer_task(None, pd.Series([0.5, 1.7, 2.2])), infer_task(None, pd.Series(["a", "b"]))
    ('regression', 'classification')
    """
    if task is not None:
        if task not in TASKS:
            raise InvalidInputError(field="task", value=task, expected=f"one of {list(TASKS)}")
        return task
    known = y.dropna()
    if pd.api.types.is_float_dtype(known.dtype):
        whole = bool(np.all(np.mod(known.to_numpy(dtype="float64"), 1) == 0))
        return "classification" if whole and known.nunique() <= 20 else "regression"
    if pd.api.types.is_integer_dtype(known.dtype) and known.nunique() > 20:
        return "regression"
    return "classification"
