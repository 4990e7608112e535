"""How tracking values travel as JSON: non-finite floats as strings, frames column-wise."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def float_out(value: float | None) -> float | str:
    """A float as JSON can carry it: NaN and infinities become strings."""
    if value is None or value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def float_in(value: float | int | str | None) -> float:
    if isinstance(value, str):
        try:
            return _NON_FINITE[value]
        except KeyError:
            raise ValueError(f"expected a number or one of {sorted(_NON_FINITE)}, got {value!r}") from None
    if value is None:
        return math.nan
    return float(value)


def frame_out(frame: pd.DataFrame) -> dict[str, Any]:
    """A search result frame as {columns, data} with times as epoch ms and non-finite metrics as strings."""
    columns: dict[str, list[Any]] = {}
    for name in frame.columns:
        series = frame[name]
        if name in ("start_time", "end_time"):
            columns[name] = [None if pd.isna(v) else int(v.value // 1_000_000) for v in series]
        elif name.startswith("metrics."):
            columns[name] = [float_out(v) for v in series.to_numpy(dtype=float)]
        else:
            columns[name] = [None if v is None or (isinstance(v, float) and v != v) else v for v in series]
    return {"columns": list(frame.columns), "data": columns}


def frame_in(payload: dict[str, Any]) -> pd.DataFrame:
    data = payload["data"]
    frame = pd.DataFrame({name: data[name] for name in payload["columns"]}, columns=payload["columns"])
    for name in ("start_time", "end_time"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True)
    for name in frame.columns:
        if name.startswith("metrics."):
            frame[name] = np.array([float_in(v) for v in frame[name]], dtype=float)
    return frame
