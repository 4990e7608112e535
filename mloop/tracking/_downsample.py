"""Downsampling of a metric series for charts, keeping each bucket's extremes."""

from __future__ import annotations

from typing import Any

import numpy as np


def downsample(rows: list[Any], max_points: int) -> list[Any]:
    """At most ``max_points`` metric points (value second), keeping the first, the last and each bucket's extremes.

    >>> len(downsample([("k", float(i % 7), i, i) for i in range(1000)], 100)) <= 100
    True
    """
    n = len(rows)
    if n <= max_points or max_points < 4:
        return rows[:max_points] if max_points < 4 else rows
    values = np.array([r[1] for r in rows], dtype=float)
    buckets = max_points // 2 - 1
    edges = np.linspace(1, n - 1, buckets + 1).astype(int)
    keep = {0, n - 1}
    filled = np.where(np.isnan(values), 0.0, values)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        chunk = filled[lo:hi]
        keep.add(lo + int(np.argmin(chunk)))
        keep.add(lo + int(np.argmax(chunk)))
    return [rows[i] for i in sorted(keep)][:max_points]
