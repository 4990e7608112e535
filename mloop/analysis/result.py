"""``Analysis``: what ``mloop.analyze`` found, as plain data that round-trips through JSON.

``summary`` flattens the numbers a promotion gate reads (``analysis.<key>`` in a rule): the overall metrics,
``worst_slice_gap`` (how far the worst slice of at least ``min_slice_size`` rows falls behind overall on the
primary metric; per metric as ``worst_slice_gap:<metric>``) and, per sensitive feature and worst over all of
them, the Fairlearn metrics.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HIGHER_IS_BETTER", "Analysis", "summarize"]

HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "auc": True, "mae": False, "rmse": False}
_FAIRNESS = {"demographic_parity_difference": max, "demographic_parity_ratio": min,
             "equalized_odds_difference": max, "equalized_odds_ratio": min}


@dataclass(slots=True, kw_only=True)
class Analysis:
    """Metrics overall and per slice (with counts and 95% intervals), calibration, confusion, fairness."""

    task: str
    label: str
    model: str
    n_rows: int
    primary_metric: str
    min_slice_size: int
    overall: dict[str, Any]
    slices: list[dict[str, Any]]
    ci_methods: dict[str, str]
    calibration: list[dict[str, Any]] | None = None
    confusion: dict[str, Any] | None = None
    fairness: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = ""
    summary: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mloop.analysis", **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=_jsonable, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Analysis:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def slice_table(self) -> Any:
        """Every slice as one row of a DataFrame: slice, value, count, then each metric and its interval."""
        import pandas as pd

        rows = []
        for s in self.slices:
            row = {"slice": s["slice"], "value": s["value"], "count": s["count"]}
            for name, m in s["metrics"].items():
                row.update({name: m["value"], f"{name}_low": m["low"], f"{name}_high": m["high"]})
            rows.append(row)
        return pd.DataFrame(rows)

    def to_html(self, path: str | Path | None = None, title: str | None = None) -> str:
        """The self-contained HTML report (Plotly inlined, no CDN); written to ``path`` when given."""
        from mloop.analysis.report import render_html

        text = render_html(self, title=title or f"Model analysis: {self.model}")
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


def summarize(analysis: Analysis) -> dict[str, float]:
    """The flat numbers a gate reads (see the module docstring)."""
    out: dict[str, float] = {}
    for name, m in analysis.overall["metrics"].items():
        if m["value"] is not None:
            out[name] = float(m["value"])
    for name, better_high in HIGHER_IS_BETTER.items():
        overall = out.get(name)
        values = [s["metrics"][name]["value"] for s in analysis.slices
                  if s["count"] >= analysis.min_slice_size and s["metrics"].get(name, {}).get("value") is not None]
        if overall is None or not values:
            continue
        gaps = [(overall - v) if better_high else (v - overall) for v in values]
        out[f"worst_slice_gap:{name}"] = float(max(gaps))
    primary = out.get(f"worst_slice_gap:{analysis.primary_metric}")
    if primary is not None:
        out["worst_slice_gap"] = primary
    for name, worst in _FAIRNESS.items():
        values = {f: r[name] for f, r in analysis.fairness.items() if r.get(name) is not None}
        for feature, value in values.items():
            out[f"{name}:{feature}"] = float(value)
        if values:
            out[name] = float(worst(values.values()))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
