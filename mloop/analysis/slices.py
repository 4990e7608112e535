"""Slice keys: one label per row for a column, a cross of two columns, or a numeric column's quantile bin.

A null in a slice column is a slice of its own, ``(missing)``; numeric columns with many distinct values are
cut into quantile bins so that each bin holds about the same number of rows.

>>> import pandas as pd
>>> df = pd.DataFrame({"sex": ["F", "M", None, "F"], "age": [20, 30, 40, 50]})
>>> slice_keys(df, "sex").tolist()
['F', 'M', '(missing)', 'F']
>>> slice_keys(df, ("sex", "age"), max_categories=2, bins=2).tolist()[0]
'F & [20, 30]'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mloop.analysis._frame import check_column
from mloop.errors import InvalidInputError

__all__ = ["MISSING", "OTHER", "slice_keys", "slice_name", "slice_specs"]

MISSING = "(missing)"
OTHER = "(other)"


def slice_specs(frame: pd.DataFrame, slices: Any) -> list[tuple[str, ...]]:
    """The slices asked for, each a tuple of one or two column names checked against ``frame``."""
    if slices is None:
        return []
    if isinstance(slices, str | tuple):
        slices = [slices]
    if not isinstance(slices, list):
        raise InvalidInputError(field="slices", value=slices,
                                expected="a list of column names or (column, column) pairs")
    specs = []
    for item in slices:
        spec = (item,) if isinstance(item, str) else tuple(item) if isinstance(item, tuple | list) else None
        if spec is None or not 1 <= len(spec) <= 2:
            raise InvalidInputError(field="slices", value=item, expected="a column name or a pair of column names")
        specs.append(tuple(check_column(frame, c, "slices") for c in spec))
    return specs


def slice_name(spec: tuple[str, ...]) -> str:
    return " x ".join(spec)


def slice_keys(frame: pd.DataFrame, spec: str | tuple[str, ...], *, bins: int = 4,
               max_categories: int = 20) -> pd.Series:
    """One string label per row for ``spec``; nulls are ``(missing)``, crosses join labels with `` & ``."""
    columns = (spec,) if isinstance(spec, str) else spec
    keys = [_column_keys(frame[c], bins, max_categories) for c in columns]
    out = keys[0]
    for more in keys[1:]:
        out = out + " & " + more
    return out


def _column_keys(col: pd.Series, bins: int, max_categories: int) -> pd.Series:
    missing = col.isna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
    if numeric and col.nunique(dropna=True) > max_categories:
        labels = _quantile_labels(col.astype("float64"), bins)
    else:
        labels = _top_labels(col.astype(object).where(~missing, None).map(str, na_action="ignore"), max_categories)
    out = labels.astype(object).to_numpy(copy=True)
    out[missing] = MISSING
    return pd.Series(out, index=col.index, dtype=object)


def _top_labels(labels: pd.Series, max_categories: int) -> pd.Series:
    """The ``max_categories - 1`` most frequent labels kept, the rest lumped into ``(other)``: a column of ids
    must not become a hundred thousand slices of one row."""
    counts = labels.value_counts()
    if len(counts) <= max_categories:
        return labels
    keep = counts.index[: max_categories - 1]
    return labels.where(labels.isin(keep) | labels.isna(), OTHER)


def _quantile_labels(values: pd.Series, bins: int) -> pd.Series:
    """Each value's quantile bin as ``[low, high]`` text (the bin's own smallest and largest value)."""
    codes = pd.qcut(values, q=bins, labels=False, duplicates="drop")
    bounds = values.groupby(codes).agg(["min", "max"])
    text = {code: f"[{_short(lo)}, {_short(hi)}]" for code, lo, hi in bounds.itertuples()}
    return codes.map(text)


def _short(value: float) -> str:
    return f"{value:.4g}" if np.isfinite(value) else str(value)
