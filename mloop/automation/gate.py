"""The gate: a challenger beats the champion by a declared margin on the same holdout, and passes its checks
(the champion's input schema, no NaN output, a latency budget measured on the holdout).

>>> higher_is_better("accuracy"), higher_is_better("mae")
(True, False)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInputError, NotFoundError

__all__ = ["GateResult", "higher_is_better", "judge"]

LOWER_IS_BETTER = {"mae", "rmse", "mse", "log_loss", "error"}
SCORES = ("accuracy", "mae", "rmse", "mse", "r2", "f1")
MAX_HOLDOUT_BYTES = 512 * 1024 * 1024


@dataclass
class GateResult:
    passed: bool
    reason: str
    champion: dict[str, float] = field(default_factory=dict)
    challenger: dict[str, float] = field(default_factory=dict)
    latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reason": self.reason, "champion": self.champion,
                "challenger": self.challenger, "latency_ms": self.latency_ms}


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def score(metric: str, truth: np.ndarray, guess: np.ndarray) -> float:
    """One number for ``metric`` (accuracy, f1 (macro), mae, rmse, mse, r2)."""
    if metric == "accuracy":
        return float((truth == guess).mean())
    if metric == "f1":
        from sklearn.metrics import f1_score

        return float(f1_score(truth, guess, average="macro"))
    err = guess.astype(float) - truth.astype(float)
    if metric == "mae":
        return float(np.abs(err).mean())
    if metric == "mse":
        return float((err**2).mean())
    if metric == "rmse":
        return float(np.sqrt((err**2).mean()))
    total = ((truth - truth.mean()) ** 2).sum()
    return float(1 - (err**2).sum() / total) if total else 0.0


def read_holdout(path: str, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    file = Path(path)
    if not file.exists():
        raise NotFoundError(f"evaluate: no holdout at {path!r}.", field="evaluate.holdout")
    if file.is_file() and file.stat().st_size > MAX_HOLDOUT_BYTES:
        raise InvalidInputError(field="evaluate.holdout", value=path, expected=f"at most {MAX_HOLDOUT_BYTES} bytes")
    frame = pd.read_parquet(file)
    if target not in frame.columns:
        raise InvalidInputError(field="evaluate.target", value=target, expected=f"a column of {path}: "
                                f"{list(frame.columns)[:20]}")
    return frame.drop(columns=[target]), frame[target].to_numpy()


def _predict(model: Any, inputs: pd.DataFrame) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = model.predict(inputs)
    elapsed = (time.perf_counter() - started) * 1000
    values = out.iloc[:, 0] if isinstance(out, pd.DataFrame) else out
    return np.asarray(values).reshape(len(inputs), -1)[:, 0], elapsed / max(len(inputs), 1)


def judge(champion: Any, challenger: Any, inputs: pd.DataFrame, truth: np.ndarray, *, metric: str | None = None,
          margin: float = 0.0, metrics: dict[str, float] | None = None,
          max_latency_ms: float | None = None) -> GateResult:
    """Score both loaded models on the same rows; the challenger passes when it is better by the margin
    (absolute, in the metric's own direction) on every declared metric (``metric`` with ``margin``, or
    ``metrics``: metric -> margin) and its checks hold."""
    wanted = dict(metrics) if metrics else {str(metric): margin}
    problems = challenger.validate(inputs)
    if problems:
        return GateResult(False, f"the holdout does not fit the challenger's input schema: {problems[0]}")
    guess, latency = _predict(challenger, inputs)
    if guess.dtype.kind == "f" and np.isnan(guess).any():
        return GateResult(False, f"the challenger predicted NaN for {int(np.isnan(guess).sum())} holdout rows",
                          latency_ms=latency)
    if max_latency_ms is not None and latency > max_latency_ms:
        return GateResult(False, f"the challenger took {latency:.3f} ms per row, over the budget of "
                          f"{max_latency_ms} ms", latency_ms=latency)
    theirs_guess = _predict(champion, inputs)[0]
    result = GateResult(True, "", latency_ms=latency)
    verdicts = []
    for name, bound in wanted.items():
        theirs, ours = score(name, truth, guess), score(name, truth, theirs_guess)
        result.challenger[name], result.champion[name] = theirs, ours
        gain = theirs - ours if higher_is_better(name) else ours - theirs
        beats = gain >= bound
        result.passed = result.passed and beats
        verdicts.append((beats, f"{'beats' if beats else 'does not beat'} the champion by the margin {bound} on "
                                f"{name}: {theirs:.4f} vs {ours:.4f}"))
    ordered = [text for beats, text in verdicts if not beats] + [text for beats, text in verdicts if beats]
    result.reason = f"the challenger {'; '.join(ordered)} on the same {len(truth)} rows"
    return result


MAX_TRAFFIC_ROWS = 200_000


def labelled_traffic(settings: Any, model: str, seconds: int, now_ms: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The model's served rows of the last ``seconds`` that got a label, as (inputs, truth): the same recent
    traffic for both models. At most MAX_TRAFFIC_ROWS, the newest."""
    from mloop.monitoring import _log
    from mloop.store.blob import open_blob_store

    blobs = open_blob_store(settings.artifact_root)
    since = now_ms - seconds * 1000
    rows = _log.rows_since(blobs, model, since, now_ms + 1)
    labels = _log.read_labels(blobs, _log.feedback_files(blobs, ""))
    joined = rows.merge(labels, on="id", how="inner").tail(MAX_TRAFFIC_ROWS)
    inputs = joined.drop(columns=[c for c in (*_log._BASE, "label") if c in joined.columns])
    return inputs.reset_index(drop=True), _log.decode(joined["label"]).to_numpy()
