"""Search results as one wide pandas DataFrame: run attributes, then params.*, metrics.*, tags.*."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

from mloop.tracking._values import decode_param

ATTR_COLUMNS = ["run_id", "experiment_id", "name", "status", "user", "start_time", "end_time",
                "parent_run_id", "lifecycle_stage", "description", "artifact_uri"]
_ATTRS = attrgetter(*ATTR_COLUMNS)


def runs_frame(runs: list[Any], params: list[Any], metrics: list[Any], tags: list[Any]) -> pd.DataFrame:
    """One row per run in the order given, with typed params and NaN-faithful metrics."""
    base = pd.DataFrame(list(map(_ATTRS, runs)), columns=ATTR_COLUMNS)
    base["experiment_id"] = base["experiment_id"].astype(str)
    for col in ("start_time", "end_time"):
        base[col] = pd.to_datetime(base[col], unit="ms", utc=True)
    ids = base["run_id"]
    parts = [base]
    if params:
        rows = [(r[0], r[1], decode_param(r[2], r[3])) for r in params]
        parts.append(_wide(rows, ids, "params.", object))
    if metrics:
        rows = [(r[0], r[1], np.nan if r[2] is None else r[2]) for r in metrics]
        parts.append(_wide(rows, ids, "metrics.", float))
    if tags:
        parts.append(_wide([tuple(r) for r in tags], ids, "tags.", object))
    frame = pd.concat(parts, axis=1) if len(parts) > 1 else base
    return frame


def _wide(rows: list[tuple[Any, ...]], ids: pd.Series, prefix: str, dtype: Any) -> pd.DataFrame:
    position = {run_id: i for i, run_id in enumerate(ids)}
    n = len(position)
    empty = np.nan if dtype is float else None
    columns: dict[str, list[Any]] = {}
    for run_id, key, value in rows:
        column = columns.get(key)
        if column is None:
            column = columns[key] = [empty] * n
        column[position[run_id]] = value
    return pd.DataFrame({prefix + key: pd.array(columns[key], dtype=float if dtype is float else object)
                         for key in sorted(columns)}, index=range(n))
