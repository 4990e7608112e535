"""Group fairness of a classifier over a sensitive feature, computed with Fairlearn.

For each declared sensitive feature: demographic parity difference and ratio (of selection rates) and
equalized odds difference and ratio (the worse of the true- and false-positive-rate gaps), plus each group's
count, selection rate, true and false positive rate (from Fairlearn's MetricFrame over rows weighted by their
count, see ``_compress``). Fairlearn is an optional dependency
(``pip install 'mloop[analysis]'``). Multiclass labels are read one-vs-rest against the positive class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mloop._util.optional import require

__all__ = ["fairness_report"]


def fairness_report(keys: pd.Series, y_true: np.ndarray, y_pred: np.ndarray, positive: Any) -> dict[str, Any]:
    """Fairlearn's group metrics for one sensitive feature (``keys``: each row's group label).

    >>> keys = pd.Series(["a", "a", "b", "b"])
    >>> report = fairness_report(keys, np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]), 1)
    >>> report["equalized_odds_difference"], report["demographic_parity_difference"]
    (1.0, 0.5)
    """
    fm = require("fairlearn.metrics", extra="analysis")
    truth, pred, groups, weight = _compress(keys, (np.asarray(y_true) == positive), (np.asarray(y_pred) == positive))
    out: dict[str, Any] = {"positive": _plain(positive)}
    for name in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                 "equalized_odds_ratio"):
        out[name] = _number(getattr(fm, name)(truth, pred, sensitive_features=groups, sample_weight=weight))
    weighted = {"sample_weight": weight}
    frame = fm.MetricFrame(metrics={"selection_rate": fm.selection_rate,
                                    "true_positive_rate": fm.true_positive_rate,
                                    "false_positive_rate": fm.false_positive_rate},
                           y_true=truth, y_pred=pred, sensitive_features=pd.Series(groups, name="group"),
                           sample_params={k: weighted for k in ("selection_rate", "true_positive_rate",
                                                                "false_positive_rate")})
    by_group = frame.by_group
    by_group.insert(0, "count", pd.Series(weight).groupby(groups).sum().reindex(by_group.index).astype("int64"))
    out["groups"] = [{k: _plain(v) for k, v in row.items()} for row in by_group.reset_index().to_dict("records")]
    return out


def _compress(keys: pd.Series, truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, ...]:
    """One row per (group, label, prediction) with its count as the sample weight.

    Fairlearn's metrics here depend only on those counts, and it handles columns element by element
    (``np.stack`` of each value), which costs seconds on 100,000 rows; the weighted rows give the same numbers.
    """
    cells = pd.DataFrame({"group": keys.to_numpy(dtype=object), "truth": truth.astype("int64"),
                          "pred": pred.astype("int64")})
    counts = cells.value_counts(sort=False).reset_index(name="weight")
    return (counts["truth"].to_numpy(), counts["pred"].to_numpy(), counts["group"].to_numpy(dtype=object),
            counts["weight"].to_numpy(dtype="float64"))


def _number(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
