"""``drift(reference, current)``: per-column drift with a method chosen by type and sample size.

Both sides are reduced to profiles first (the current one on the reference's bins), so data-vs-data,
profile-vs-data and profile-vs-profile reach the same verdicts.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(0, 1, 5000), "c": rng.choice(["a", "b"], 5000)})
>>> cur = pd.DataFrame({"x": rng.normal(0.5, 1, 5000), "c": rng.choice(["a", "b"], 5000)})
>>> result = drift(ref, cur)
>>> [(c.column, c.method, c.drifted) for c in result.columns]
[('x', 'wasserstein', True), ('c', 'jensenshannon', False)]
>>> result.drift_share
0.5
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import InvalidInputError
from mloop.validation._data import as_frame
from mloop.validation.drift_detection.methods import (
    METHODS,
    SMALL_SAMPLE,
    Pair,
    default_method,
    effect_size,
    effect_size_note,
    get_method,
)
from mloop.validation.profile import Profile, profile

__all__ = ["ColumnDrift", "DriftResult", "RESULT_VERSION", "drift"]

RESULT_VERSION = 1
# the methods whose statistic is what effect_size computes (the built-in ones, not one registered in their place)
_EFFECT_SIZES = (METHODS["wasserstein"].fn, METHODS["jensenshannon"].fn)


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """One column's verdict: method, statistic, p-value (tests only), effect size, threshold, drifted."""

    column: str
    kind: str
    role: str  # feature, prediction or target
    method: str
    statistic: float
    p_value: float | None
    effect_size: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    note: str = ""
    reference: Any = field(default=None, repr=False, compare=False)  # the profiles, for reports
    current: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "kind": self.kind, "role": self.role, "method": self.method,
                "statistic": _num(self.statistic), "p_value": _num(self.p_value),
                "effect_size": _num(self.effect_size), "threshold": self.threshold, "drifted": self.drifted,
                "n_reference": self.n_reference, "n_current": self.n_current, "note": self.note}


@dataclass(frozen=True, slots=True)
class DriftResult:
    """Every column's drift and the dataset verdict (drifted when at least ``share_threshold`` of columns drift)."""

    columns: list[ColumnDrift]
    share_threshold: float
    n_reference: int
    n_current: int

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def drift_share(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.columns) and self.drift_share >= self.share_threshold

    @property
    def any_drift(self) -> bool:
        return bool(self.drifted_columns)

    def __getitem__(self, column: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        raise InvalidInputError(field="column", value=column, expected=f"one of {[c.column for c in self.columns]}")

    @property
    def prediction(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.role == "prediction"]

    @property
    def target(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.role == "target"]

    def sorted(self) -> list[ColumnDrift]:
        """Drifted first, then by effect size, largest first."""
        return sorted(self.columns, key=lambda c: (not c.drifted, -_order(c.effect_size)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mloop.drift", "version": RESULT_VERSION, "dataset_drift": self.dataset_drift,
                "drift_share": self.drift_share, "share_threshold": self.share_threshold,
                "drifted_columns": self.drifted_columns, "n_reference": self.n_reference,
                "n_current": self.n_current, "columns": [c.to_dict() for c in self.sorted()]}

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.sorted()])

    def to_html(self, path: str | Path | None = None, title: str = "Data drift", self_contained: bool = True) -> str:
        """An HTML report (summary table, overlaid distributions drawn from profiles only) that opens offline.

        Self-contained by default (Plotly.js from the installed ``plotly`` package inlined, about 5 MB);
        ``self_contained=False`` writes it beside ``path`` as ``plotly.min.js`` instead, so many reports in one
        folder share it (a few kB each).
        """
        from mloop.validation.drift_detection.report import PLOTLY_FILE, plotly_js, render_html

        if not self_contained and path is None:
            raise InvalidInputError(field="path", value=None,
                                    expected="a file path: a report that is not self-contained loads "
                                             f"{PLOTLY_FILE} from its own folder, written there with it")
        html = render_html(self, title, self_contained)
        if path is not None:
            folder = Path(path).parent
            folder.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(html, encoding="utf-8")
            if not self_contained:  # written each time, so it is always the bundle this report was made for
                (folder / PLOTLY_FILE).write_text(plotly_js(), encoding="utf-8")
        return html

    def __str__(self) -> str:
        head = (f"{'DRIFT' if self.dataset_drift else 'no dataset drift'}: {len(self.drifted_columns)} of "
                f"{len(self.columns)} columns drifted ({self.drift_share:.0%}; dataset threshold "
                f"{self.share_threshold:.0%})")
        lines = [f"  {'*' if c.drifted else ' '} {c.column:<24} {c.method:<14} stat={_fmt(c.statistic)} "
                 f"p={_fmt(c.p_value)} effect={_fmt(c.effect_size)} threshold={c.threshold:g}" for c in self.sorted()]
        notes = [f"  note on {c.column}: {c.note}" for c in self.sorted() if c.note]
        return "\n".join([head, *lines, *notes])


def drift(reference: Any, current: Any, columns: list[str] | None = None, *, methods: dict[str, str] | None = None,
          thresholds: dict[str, float] | None = None, kinds: dict[str, str] | None = None,
          prediction: str | list[str] | None = None, target: str | list[str] | None = None,
          share_threshold: float = 0.5, small_sample: int = SMALL_SAMPLE) -> DriftResult:
    """Measure drift of ``current`` against ``reference`` per column.

    Either side may be data (DataFrame, Arrow table, Series or array of predictions, Parquet/CSV path) or a
    ``Profile``. Defaults: numeric columns get a KS test when either side has at most ``small_sample`` values,
    else the Wasserstein distance normalized by the reference's standard deviation (drifted at >= 0.1);
    categorical columns a chi-square test, else the Jensen-Shannon distance (>= 0.1). ``methods`` picks a
    method per column (any registered name), ``thresholds`` overrides a column's threshold, ``kinds`` forces
    numeric or categorical. ``prediction`` and ``target`` name the model output and label columns: they are
    measured the same way and reported with their role. Datetime columns are left out unless listed.
    """
    roles = {name: "prediction" for name in _names(prediction)} | {name: "target" for name in _names(target)}
    wanted = list(columns) + [r for r in roles if r not in columns] if columns is not None else None
    ref_profile = reference if isinstance(reference, Profile) else profile(reference, columns=wanted, kinds=kinds)
    if wanted is not None:
        missing = [c for c in wanted if c not in ref_profile]
        if missing:
            raise InvalidInputError(field="columns", value=missing, expected="columns of the reference (not datetimes)")
    if isinstance(current, Profile):
        cur_profile = current
    else:
        as_frame(current, "current")
        cur_profile = profile(current, reference=ref_profile, columns=list(ref_profile.columns))
    results = []
    for name, ref in ref_profile.columns.items():
        cur = cur_profile.columns.get(name)
        if cur is None:
            raise InvalidInputError(field="current", value=name, expected="every reference column in the current data")
        if cur.kind != ref.kind:
            raise InvalidInputError(field=name, value=cur.kind, expected=f"a {ref.kind} column as in the reference")
        results.append(_column(name, ref, cur, roles.get(name, "feature"), methods or {}, thresholds or {},
                               small_sample))
    return DriftResult(results, share_threshold, ref_profile.rows, cur_profile.rows)


def _column(name: str, ref: Any, cur: Any, role: str, methods: dict[str, str], thresholds: dict[str, float],
            small: int) -> ColumnDrift:
    method = get_method(methods.get(name) or default_method(ref.kind, ref.count, cur.count, small), ref.kind, name)
    threshold = float(thresholds.get(name, method.threshold))
    note = ""
    if not ref.count or not cur.count:
        statistic, p_value, drifted = float("nan"), None, False
        note = f"no values in the {'reference' if not ref.count else 'current'} data"
    else:
        statistic, p_value = method.fn(Pair(name, ref, cur))
        drifted = method.drifted(statistic, p_value, threshold)
        note = effect_size_note(ref, cur)
    # the distance methods are the effect size itself: measured once (a monitor measures thousands a day)
    effect = statistic if method.fn in _EFFECT_SIZES else effect_size(ref, cur)
    return ColumnDrift(name, ref.kind, role, method.name, float(statistic), p_value, float(effect),
                       threshold, bool(drifted), int(ref.count), int(cur.count), note, ref, cur)


def _names(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _num(x: float | None) -> float | None:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return None
    if isinstance(x, float) and np.isinf(x):
        return 1e308 if x > 0 else -1e308
    return float(x)


def _order(x: float) -> float:
    return -1.0 if x is None or x != x else x


def _fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.4g}"
