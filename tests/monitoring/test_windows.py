"""A window's figures against the libraries everyone trusts for them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, roc_auc_score

from mloop.monitoring.windows import _auc, _macro_f1, summarize


def test_f1_and_auc_equal_scikit_learns_on_random_labels_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        y, p = rng.choice(list("abc"), 60), rng.choice(list("abcd"), 60)
        assert _macro_f1(y, p) == pytest.approx(f1_score(y, p, average="macro", zero_division=0), abs=1e-12)
        truth, score = rng.random(50) < 0.4, rng.integers(0, 5, 50) / 4  # many tied scores
        if truth.any() and not truth.all():
            assert _auc(truth, score) == pytest.approx(roc_auc_score(truth, score), abs=1e-12)


def test_sliced_scores_equal_scikit_learn_on_the_same_rows() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    zone = rng.choice(["a", "b", "c"], n).astype(object)
    zone[rng.random(n) < 0.15] = None
    truth = rng.integers(0, 2, n)
    score = np.clip(truth * 0.3 + rng.random(n) * 0.7, 0, 1)
    guess = (score > 0.5).astype(int)
    rows = pd.DataFrame({"id": [f"q{i}-0" for i in range(n)], "latency_ms": 1.0, "output": guess.astype(str),
                         "proba": [f'{{"0": {1 - s}, "1": {s}}}' for s in score], "zone": zone,
                         "label": truth.astype(str)})
    found = summarize(rows, task="classification", slices=("zone",))
    got = {(p.metric, p.slice): p.value for p in found.points}
    for key, part in [("", np.ones(n, bool)), ("zone=b", zone == "b"), ("zone=(missing)", pd.isna(zone))]:
        assert got[("accuracy", key)] == pytest.approx(accuracy_score(truth[part], guess[part]))
        assert got[("f1", key)] == pytest.approx(f1_score(truth[part], guess[part], average="macro"))
        assert got[("auc", key)] == pytest.approx(roc_auc_score(truth[part], score[part]))
        assert got[("labelled", key)] == part.sum()


def test_regression_windows_score_mae_and_keep_null_inputs() -> None:
    rows = pd.DataFrame({"id": ["a-0", "a-1", "b-0", "c-0"], "latency_ms": [2.0, 2.0, 5.0, 9.0],
                         "output": ["1.5", "2.0", "3.0", "4.0"], "proba": None, "km": [1.0, None, None, 4.0],
                         "label": ["1.0", None, "2.0", "4.5"]})
    got = {(p.metric, p.column): p.value for p in summarize(rows, task="regression").points}
    assert got[("requests", "")] == 3 and got[("rows", "")] == 4
    assert got[("null_share", "km")] == 0.5
    assert got[("mae", "")] == pytest.approx(mean_absolute_error([1.0, 2.0, 4.5], [1.5, 3.0, 4.0]))
    assert got[("labelled", "")] == 3
