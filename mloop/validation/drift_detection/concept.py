"""Concept drift: the model's performance per time window, against a baseline, when labels arrive.

>>> import numpy as np, pandas as pd
>>> t = pd.date_range("2026-01-01", periods=28, freq="D", tz="UTC")
>>> y = np.arange(28.0)
>>> pred = y + np.where(np.arange(28) >= 21, 5.0, 0.5)   # the last week goes wrong
>>> frame = pd.DataFrame({"t": t, "y": y, "pred": pred})
>>> windows = performance_by_window(frame, target="y", prediction="pred", time="t", window="7D")
>>> windows[["rows", "rmse", "degraded"]].to_dict("list")
{'rows': [7, 7, 7, 7], 'rmse': [0.5, 0.5, 0.5, 5.0], 'degraded': [False, False, False, True]}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInputError

__all__ = ["METRICS", "performance_by_window"]


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p)))


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(y == p))


# name -> (function, higher_is_better)
METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], bool]] = {
    "rmse": (_rmse, False), "mae": (_mae, False), "accuracy": (_accuracy, True),
}


def performance_by_window(data: pd.DataFrame, *, target: str, prediction: str, time: str, window: str = "7D",
                          metric: str | None = None, baseline: float | None = None, baseline_windows: int = 1,
                          tolerance: float = 0.2) -> pd.DataFrame:
    """One row per window: its start, rows, the metric, the baseline and whether it degraded.

    ``metric`` is rmse (numeric target, the default), mae or accuracy (the default for other targets). The
    baseline is ``baseline`` or the metric over the first ``baseline_windows`` windows; a window degraded
    when it is worse than the baseline by more than ``tolerance`` (relative).
    """
    for field in (target, prediction, time):
        if field not in data.columns:
            raise InvalidInputError(field=field, value=field, expected=f"a column of the data: {list(data.columns)}")
    if metric is None:
        metric = "rmse" if pd.api.types.is_numeric_dtype(data[target]) else "accuracy"
    if metric not in METRICS:
        raise InvalidInputError(field="metric", value=metric, expected=f"one of {sorted(METRICS)}")
    fn, higher_better = METRICS[metric]
    stamps = pd.to_datetime(data[time], utc=True)
    try:
        starts = stamps.dt.floor(window) if window.endswith(("h", "H", "min", "s")) else _bucket(stamps, window)
    except ValueError as exc:
        raise InvalidInputError(field="window", value=window,
                                expected=f"a pandas frequency such as 7D ({exc})") from None
    y, p = data[target].to_numpy(), data[prediction].to_numpy()
    groups = pd.Series(np.arange(len(data))).groupby(starts.to_numpy(), sort=True).indices
    rows: list[dict[str, Any]] = [{"window_start": pd.Timestamp(k), "rows": len(ix), metric: fn(y[ix], p[ix])}
                                  for k, ix in groups.items()]
    out = pd.DataFrame(rows, columns=["window_start", "rows", metric])
    if baseline is None and len(out):
        first = np.concatenate([groups[k] for k in list(groups)[:baseline_windows]])
        baseline = fn(y[first], p[first])
    out["baseline"] = baseline
    worse = (baseline - out[metric]) if higher_better else (out[metric] - baseline)
    out["degraded"] = (worse > tolerance * abs(baseline)).astype(bool) if baseline is not None else False
    return out


def _bucket(stamps: pd.Series, window: str) -> pd.Series:
    """Fixed windows of ``window`` counted from the first timestamp (days and weeks line up with the data)."""
    size = pd.Timedelta(window)
    origin = stamps.min()
    return origin + ((stamps - origin) // size) * size
