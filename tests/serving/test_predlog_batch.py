"""The prediction log's writer builds its tables without a Python loop over the requests (the GIL stays with
the event loop), and what it writes is what was predicted: ids, inputs, outputs, probabilities, times."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from mloop.serving.predlog import PredictionLog, read_predictions


def _lines_run_by(fn) -> int:
    """How many lines of Python ``fn()`` executes (every frame it enters, libraries included)."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def _fill(log: PredictionLog, requests: int) -> None:
    for i in range(requests):
        columns = {"zone": ["north" if i % 3 else None], "km": [float(i)], "hour": [i % 24]}
        log.record("eta", "3", "primary", f"r{i}", columns, [np.float64(i) / 2], 0.002, 1)


def test_a_flush_runs_no_python_line_per_request(tmp_path: Path) -> None:
    log = PredictionLog(Settings.load(home=str(tmp_path / "h")), flush_seconds=3600, max_rows=10**6)
    _fill(log, 20)
    log.flush()  # first use: Arrow's and the store's lazy imports are paid here
    lines = {}
    for requests in (20, 4000):
        _fill(log, requests)
        lines[requests] = _lines_run_by(log.flush)
    log.close()
    assert log.written == 4040 and log.errors == 0
    # the same Python work for 4,000 requests as for 20: every loop over them runs inside C
    assert lines[4000] <= lines[20] + 20, lines


def test_what_is_written_is_what_was_predicted(tmp_path: Path) -> None:
    settings = Settings.load(home=str(tmp_path / "h"))
    log = PredictionLog(settings, flush_seconds=3600)
    before = datetime.now(UTC)
    log.record("churn", "1", "primary", "a", {"plan": ["pro", None], "usage": [3.5, np.nan]}, ["yes", "no"], 0.01, 2,
               proba=[[0.2, 0.8], [0.9, 0.1]], classes=["no", "yes"])
    log.record("churn", "2", "challenger", "b", {"plan": ["free"], "usage": [None]}, [np.int64(1)], 0.004, 1)
    log.record("churn", "1", "primary", "c", {"seats": [4]}, [{"why": "a dict"}], 0.001, 1)  # another input set
    log.record("eta", "7", "primary", "d", {}, [12.5], 0.002, 1)  # a model without inputs
    log.record("eta", "7", "primary", "e", {}, [1.0, 2.0], 0.002, 3)  # rows and outputs disagree: not logged
    log.record("churn", "1", "primary", "f", {"plan": ["pro"], "usage": [1.0]}, [object()], 0.001, 1)
    log.record("churn", "1", "primary", "g", {"plan": ["pro"], "usage": [1.0]}, ["no"], 0.001, 1,
               proba=[[object()]], classes=["no"])  # probabilities JSON cannot hold: counted, not raised
    log.close()
    assert log.errors == 2 and log.written == 6
    churn = read_predictions(settings, "churn").set_index("id")
    assert sorted(churn.index) == ["a-0", "a-1", "b-0", "c-0", "f-0"]
    assert churn.loc["a-0", "output"] == '"yes"' and churn.loc["b-0", "output"] == "1"
    assert churn.loc["c-0", "output"] == '{"why":"a dict"}' and churn.loc["f-0", "output"].startswith('"<object')
    assert churn.loc["a-1", "proba"] == '{"no":0.9,"yes":0.1}' and pd.isna(churn.loc["b-0", "proba"])
    assert churn.loc["a-1", "inputs"] == '{"plan":null,"usage":null}'  # None and NaN alike
    assert churn.loc["c-0", "inputs"] == '{"seats":4}'
    assert churn.loc["b-0", "version"] == "2" and churn.loc["b-0", "role"] == "challenger"
    assert churn.loc["a-0", "latency_ms"] == pytest.approx(10.0)
    assert churn.loc["b-0", "latency_ms"] == pytest.approx(4.0)
    assert (churn["time"] >= pd.Timestamp(before).floor("ms")).all() and str(churn["time"].dt.tz) == "UTC"
    eta = read_predictions(settings, "eta")
    assert eta["id"].tolist() == ["d-0"] and eta["output"].tolist() == ["12.5"] and eta["inputs"].tolist() == ["{}"]
