"""One window of one model version's traffic, summarized: traffic, latency, inputs, drift, quality, performance.

``summarize`` is a pure function of the window's rows, so the monitor can recompute any window (after late
labels) and get the same numbers. Each figure is a ``Point(metric, column, slice, value)``; ``column`` is the
input it is about ("" for the whole window) and ``slice`` the segment ("" for all rows).

>>> import pandas as pd
>>> rows = pd.DataFrame({"id": ["a-0", "a-1", "b-0"], "latency_ms": [4.0, 4.0, 9.0], "output": ["1.5", "2", "3"],
...                      "proba": [None] * 3, "km": [1.0, 2.0, None]})
>>> found = summarize(rows, task="regression")
>>> {(p.metric, p.column): p.value for p in found.points if p.metric in ("rows", "requests", "null_share")}
{('rows', ''): 3.0, ('requests', ''): 2.0, ('null_share', 'km'): 0.3333333333333333}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mloop.monitoring._log import decode
from mloop.validation.attach import PREDICTION  # the model's output's column in drift and profiles
from mloop.validation.drift_detection.compute import drift
from mloop.validation.profile import Profile, profile
from mloop.validation.schema import Schema
from mloop.validation.validate import validate

if TYPE_CHECKING:
    from mloop._util.conditions import Condition

Segments = tuple[tuple[str, "Condition"], ...] | list[tuple[str, "Condition"]]

__all__ = ["Point", "Summary", "summarize", "PREDICTION", "LOG_COLUMNS"]

MISSING = "(missing)"
LOG_COLUMNS = frozenset({"id", "time", "version", "role", "latency_ms", "output", "proba", "label"})
MAX_CLASSES = 20  # prediction shares are kept for the most frequent classes only
MAX_SLICE_VALUES = 50  # per slice column, the most frequent values get a row of their own
DISTANCES = {"numeric": "wasserstein", "categorical": "jensenshannon"}


@dataclass(frozen=True, slots=True)
class Point:
    metric: str
    column: str
    slice: str
    value: float


@dataclass
class Summary:
    """The points of one window and the window's profile (its inputs and prediction on the training bins)."""

    points: list[Point] = field(default_factory=list)
    profile: Profile | None = None

    def add(self, metric: str, value: float, column: str = "", slice: str = "") -> None:
        self.points.append(Point(metric, column, slice, float(value)))


def summarize(rows: pd.DataFrame, *, task: str, reference: Profile | None = None, schema: Schema | None = None,
              previous: Profile | None = None, slices: tuple[str, ...] = (),
              segments: Segments = ()) -> Summary:
    """Every figure of one window of one version and role (``rows`` as ``_log.read_rows`` returns them, plus a
    ``label`` column once labels arrived); ``segments`` as ``segments.parse_segments`` returns them."""
    out = Summary()
    inputs = [c for c in rows.columns if c not in LOG_COLUMNS]
    _traffic(rows, out)
    predicted = decode(rows["output"]) if len(rows) else pd.Series(dtype="float64")
    _predictions(predicted, task, out)
    for name in inputs:
        out.add("null_share", float(rows[name].isna().mean()) if len(rows) else 0.0, name)
    frame = rows[inputs].assign(**{PREDICTION: predicted.to_numpy()})
    out.profile = _window_profile(frame, reference)
    _drift(out, reference, out.profile, "drift")
    _drift(out, previous, out.profile, "drift_prev")
    if schema is not None and len(rows):
        _quality(rows[inputs], schema, out)
    if "label" in rows:
        _performance(rows, predicted, task, slices, out, segments)
    return out


def _traffic(rows: pd.DataFrame, out: Summary) -> None:
    first = first_attempts(rows["id"]) if len(rows) else np.zeros(0, dtype=bool)
    add_traffic(out, len(rows), rows["latency_ms"].to_numpy(dtype="float64")[first])


def first_attempts(ids: pd.Series) -> np.ndarray:
    """True for the first row of each request (its id ends in ``-0``): one latency per request."""
    return np.asarray(ids.astype(str).str.endswith("-0"), dtype=bool)


def add_traffic(out: Summary, rows: int, latencies: np.ndarray) -> None:
    """The window's rows, its requests and their latency percentiles (``latencies``: one per request)."""
    out.add("rows", rows)
    out.add("requests", len(latencies))
    if len(latencies):
        p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
        out.add("latency_p50", p50)
        out.add("latency_p95", p95)
        out.add("latency_p99", p99)


def _predictions(predicted: pd.Series, task: str, out: Summary) -> None:
    if not len(predicted):
        return
    if task == "regression" and predicted.dtype.kind == "f":
        values = predicted.dropna().to_numpy()
        if len(values):
            out.add("prediction_mean", values.mean(), PREDICTION)
            for q, v in zip((50, 95), np.percentile(values, [50, 95]), strict=True):
                out.add(f"prediction_p{q}", v, PREDICTION)
        return
    shares = predicted.astype(str).value_counts(normalize=True).head(MAX_CLASSES)
    for label, share in shares.items():
        out.add("prediction_share", share, PREDICTION, str(label))


def _window_profile(frame: pd.DataFrame, reference: Profile | None) -> Profile:
    """The window's profile: on the training profile's bins for the columns it has, the rest on their own."""
    if reference is None:
        return profile(frame)
    known = [c for c in frame.columns if c in reference]
    shared = Profile({c: reference.columns[c] for c in known}, reference.rows)
    on_reference = profile(frame[known], reference=shared) if known else Profile({}, len(frame))
    rest = [c for c in frame.columns if c not in reference]
    own = profile(frame[rest]) if rest else Profile({}, len(frame))
    return Profile({**on_reference.columns, **own.columns}, len(frame))


def _drift(out: Summary, reference: Profile | None, current: Profile, prefix: str) -> None:
    """Drift of each column ``current`` shares with ``reference``, and the share of inputs that drifted."""
    if reference is None or not current.rows:
        return
    shared = [c for c in current.columns if c in reference and reference.columns[c].kind == current.columns[c].kind]
    if not shared:
        return
    ref = Profile({c: reference.columns[c] for c in shared}, reference.rows)
    cur = Profile({c: current.columns[c] for c in shared}, current.rows)
    # Distances, not tests: a test's p-value flags 5% of healthy windows, and a busy window's every tiny shift.
    result = drift(ref, cur, methods={c: DISTANCES[ref.columns[c].kind] for c in shared})
    inputs = 0
    drifted = 0
    for c in result.columns:
        if np.isfinite(c.statistic):
            out.add(f"{prefix}_statistic", c.statistic, c.column)
        out.add(f"{prefix}_effect", c.effect_size, c.column)
        out.add(f"{prefix}ed" if prefix == "drift" else f"{prefix}_drifted", float(c.drifted), c.column)
        if c.column != PREDICTION:
            inputs += 1
            drifted += int(c.drifted)
    if inputs:
        out.add(f"{prefix}_share", drifted / inputs)


def _quality(frame: pd.DataFrame, schema: Schema, out: Summary) -> None:
    """Violations of the training schema, per column and check; missing columns are the request's business."""
    result = validate(frame, schema.select([c for c in schema.columns if c in frame.columns]))
    total = 0
    for v in result.violations:
        out.add("violations", v.count, v.column, v.check)
        total += v.count
    out.add("violation_share", min(total / len(frame), 1.0))


def _performance(rows: pd.DataFrame, predicted: pd.Series, task: str, slices: tuple[str, ...],
                 out: Summary, segments: Segments = ()) -> None:
    labelled = rows["label"].notna().to_numpy()
    out.add("labelled", int(labelled.sum()))
    if not labelled.any():
        return
    scored = _Scored.of(decode(rows["label"][labelled]), predicted[labelled], rows["proba"][labelled], task)
    everyone = np.ones(int(labelled.sum()), dtype=bool)
    for metric, value in scored.scores(everyone).items():
        out.add(metric, value)
    for name in slices:
        if name not in rows:
            continue
        keys = _slice_keys(rows[name][labelled].reset_index(drop=True))
        for key in keys.value_counts().head(MAX_SLICE_VALUES).index:
            mask = (keys == key).to_numpy()
            segment = f"{name}={key}"
            _add_scores(out, scored, mask, segment)
    if segments:
        _segment_scores(rows[labelled].reset_index(drop=True), scored, segments, out)


def _segment_scores(labelled: pd.DataFrame, scored: _Scored, segments: Segments, out: Summary) -> None:
    """Each declared segment's labelled rows and metrics, as the slice ``segment=<name>``; an empty one is left out
    as a slice value without rows is."""
    from mloop.monitoring.segments import SEGMENT_PREFIX, segment_mask

    for name, condition in segments:
        mask = segment_mask(condition, labelled)
        if mask.any():
            _add_scores(out, scored, mask, SEGMENT_PREFIX + name)


def _add_scores(out: Summary, scored: _Scored, mask: np.ndarray, segment: str) -> None:
    out.add("labelled", int(mask.sum()), "", segment)
    for metric, value in scored.scores(mask).items():
        out.add(metric, value, "", segment)


@dataclass
class _Scored:
    """A window's labelled rows as arrays, parsed once, scored for any subset (all rows, each slice)."""

    task: str
    truth: np.ndarray
    guess: np.ndarray
    score: np.ndarray | None = None  # the positive class's probability, for a binary classifier
    positive: str | None = None

    @classmethod
    def of(cls, truth: pd.Series, guess: pd.Series, proba: pd.Series, task: str) -> _Scored:
        if task == "regression":
            return cls(task, pd.to_numeric(truth, errors="coerce").to_numpy(dtype="float64"),
                       pd.to_numeric(guess, errors="coerce").to_numpy(dtype="float64"))
        y, p = truth.astype(str).to_numpy(), guess.astype(str).to_numpy()
        positive, score = _binary_scores(y, proba)
        return cls(task, y, p, score, positive)

    def scores(self, mask: np.ndarray) -> dict[str, float]:
        y, p = self.truth[mask], self.guess[mask]
        if self.task == "regression":
            ok = np.isfinite(y) & np.isfinite(p)
            if not ok.any():
                return {}
            err = p[ok] - y[ok]
            return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean()))}
        if not len(y):
            return {}
        found = {"accuracy": float((y == p).mean()), "f1": _macro_f1(y, p)}
        if self.score is not None:
            auc = _auc(y == self.positive, self.score[mask])
            if auc is not None:
                found["auc"] = auc
        return found


def _macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    """The unweighted mean of each class's F1 over the classes in either array (scikit-learn's ``macro``)."""
    classes, codes = np.unique(np.concatenate([y, p]), return_inverse=True)
    ty, tp = codes[: len(y)], codes[len(y):]
    k = len(classes)
    hits = np.bincount(ty[ty == tp], minlength=k).astype("float64")
    support, predicted = np.bincount(ty, minlength=k), np.bincount(tp, minlength=k)
    denominator = support + predicted
    f1 = np.divide(2 * hits, denominator, out=np.zeros(k), where=denominator > 0)
    return float(f1.mean())


def _auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC from ranks (Mann-Whitney U, ties at their mean rank); None when one class is absent."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _binary_scores(truth: np.ndarray, proba: pd.Series) -> tuple[str | None, np.ndarray | None]:
    """The positive class and its probability per row, from the logged ``{class: probability}`` texts; (None,
    None) unless every row has probabilities of the same two classes."""
    import orjson

    if not len(proba) or proba.isna().any():
        return None, None
    parsed = [orjson.loads(text) for text in proba]
    keys = sorted(parsed[0])
    if len(keys) != 2 or any(len(p) != 2 or keys[0] not in p or keys[1] not in p for p in parsed):
        return None, None
    labels = [_as_label(k) for k in keys]
    if set(truth) - set(labels):
        return None, None
    score = np.fromiter((p[keys[1]] for p in parsed), dtype="float64", count=len(parsed))
    return labels[1], score


def _slice_keys(values: pd.Series) -> pd.Series:
    """A slice column's rows as slice names: its values, numbers cut at their quartiles, nulls as (missing)."""
    numeric = pd.to_numeric(values, errors="coerce")
    if values.dtype.kind in "if" and numeric.nunique() > MAX_SLICE_VALUES:
        bins = pd.qcut(numeric, 4, duplicates="drop")
        keys = bins.astype(str)
    else:
        keys = values.astype(str)
    return keys.where(values.notna(), MISSING)


def _as_label(key: str) -> str:
    """A class key of the logged probabilities written as ``decode`` writes that class's labels."""
    try:
        return str(float(key))
    except ValueError:
        return key
