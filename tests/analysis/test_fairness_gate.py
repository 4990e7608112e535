"""A planted bias is reported by Fairlearn's metrics, stored with the version, and blocks a promotion gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score

import mloop
from mloop.analysis import attach_analysis, model_analysis
from mloop.errors import InvalidInputError

GATE = """
name: fair-champion
given: name = 'income'
when: analysis.equalized_odds_difference < 0.1 and analysis.worst_slice_gap <= 0.05
alias: champion
select: newest
"""


def _register(model, train: pd.DataFrame) -> int:  # type: ignore[no-untyped-def]
    with mloop.start_run(experiment="income") as run:
        version = run.log_model(model, name="income", training_data=train.drop(columns="income"),
                                input_example=train.drop(columns="income").head(5))
    return int(version.version)


def _tpr_gap(model, test: pd.DataFrame) -> float:  # type: ignore[no-untyped-def]
    pred = model.predict(test.drop(columns="income"))
    rates = [recall_score(test["income"][mask], pred[mask], pos_label=">50K")
             for mask in ((test["sex"] == "Female").to_numpy(), (test["sex"] == "Male").to_numpy(),
                          test["sex"].isna().to_numpy())]
    return max(rates) - min(rates)


def test_planted_bias_is_reported_and_blocks_the_gate(census, fair_model, biased_model) -> None:  # type: ignore[no-untyped-def]
    train, test = census
    biased_version = _register(biased_model, train)
    fair_version = _register(fair_model, train)
    biased = mloop.analyze(f"models:/income/{biased_version}", test, label="income", slices=["sex"],
                           sensitive=["sex"])
    fair = mloop.analyze(f"models:/income/{fair_version}", test, label="income", slices=["sex"],
                         sensitive=["sex"])
    eod_biased = biased.fairness["sex"]["equalized_odds_difference"]
    assert eod_biased > 0.15 and fair.fairness["sex"]["equalized_odds_difference"] < 0.1
    assert eod_biased >= _tpr_gap(biased_model, test) - 1e-9  # at least the true-positive-rate gap
    groups = {g["group"]: g for g in biased.fairness["sex"]["groups"]}
    assert groups["Female"]["true_positive_rate"] == 0.0 and groups["Male"]["true_positive_rate"] > 0.2
    assert groups["Female"]["count"] == (test["sex"] == "Female").sum()
    assert biased.fairness["sex"]["demographic_parity_ratio"] == 0.0

    registry = mloop.model_registry()
    stored = model_analysis("income", biased_version, registry=registry)
    assert stored.summary == biased.summary and stored.fairness["sex"]["positive"] == ">50K"
    selection = registry.rules.apply(GATE)
    assert selection.winner == {"name": "income", "version": fair_version}
    reasons = dict(zip(selection.candidates["version"], selection.candidates["reason"], strict=True))
    assert reasons[biased_version].startswith("when: analysis.equalized_odds_difference < 0.1 is false "
                                              "(analysis.equalized_odds_difference=0.")
    assert registry.get_alias("income", "champion").version == fair_version


def test_a_version_without_analysis_cannot_pass_the_gate(census, fair_model) -> None:  # type: ignore[no-untyped-def]
    train, _ = census
    version = _register(fair_model, train)
    selection = mloop.model_registry().rules.evaluate(GATE)
    assert selection.winner is None
    reason = selection.candidates["reason"].iloc[0]
    assert reason == ("when: analysis.equalized_odds_difference < 0.1 is false "
                      "(analysis.equalized_odds_difference=missing)")
    with pytest.raises(Exception, match="no analysis"):
        model_analysis("income", version)


def test_reanalysis_replaces_the_summary_and_report_is_offline(census, fair_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, test = census
    version = _register(fair_model, train)
    first = mloop.analyze(f"models:/income/{version}", test, label="income", sensitive=["sex", "race"])
    assert "equalized_odds_difference:race" in first.summary
    mloop.analyze(f"models:/income/{version}", test, label="income", sensitive=["sex"])
    registry = mloop.model_registry()
    tags = registry.get_version("income", version).tags
    assert "equalized_odds_difference:race" not in json.loads(tags["mloop.analysis.summary"])
    page = registry.blobs.get_bytes(tags["mloop.analysis.html"]).decode()
    assert "Plotly.newPlot('calibration'" in page and "<script src" not in page  # Plotly inlined: works offline
    assert "<script>/**\n* plotly.js v" in page
    assert 'id="mloop-analysis-result"' in page and "Female" in page
    attach_analysis(first, "income", version)
    assert model_analysis("income", version).fairness.keys() == {"sex", "race"}


def test_bad_inputs_name_the_field(census, fair_model) -> None:  # type: ignore[no-untyped-def]
    _, test = census
    cases = [({"label": "salary"}, "label"), ({"label": "income", "slices": ["nope"]}, "slices"),
             ({"label": "income", "slices": [("sex", "race", "age")]}, "slices"),
             ({"label": "income", "sensitive": [("sex", "race")]}, "sensitive"),
             ({"label": "income", "task": "ranking"}, "task"), ({"label": "income", "bins": 1}, "bins"),
             ({"label": "income", "positive": "rich"}, "positive")]
    for kwargs, field in cases:
        with pytest.raises(InvalidInputError) as err:
            mloop.analyze(fair_model, test, **kwargs)
        assert err.value.field == field, (kwargs, err.value)
    empty = test.assign(income=None)
    with pytest.raises(InvalidInputError, match="at least one value"):
        mloop.analyze(fair_model, empty, label="income")
    with pytest.raises(InvalidInputError) as err:
        mloop.analyze(object(), test, label="income")
    assert err.value.field == "model"


def test_cli_analyzes_a_registered_model(census, fair_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train, test = census
    version = _register(fair_model, train)
    test.to_parquet(tmp_path / "test.parquet")
    env = {**os.environ, "COLUMNS": "300"}
    command = [sys.executable, "-m", "mloop", "analyze", f"models:/income/{version}", str(tmp_path / "test.parquet"),
               "--label", "income", "--slice", "education", "--slice", "sex,race", "--sensitive", "sex"]
    report = tmp_path / "r.html"
    result = subprocess.run([*command, "--json", "--report", str(report)], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["kind"] == "mloop.analysis"
    assert {s["slice"] for s in body["slices"]} == {"education", "sex x race", "sex"}
    assert np.isfinite(body["summary"]["equalized_odds_difference"]) and report.stat().st_size > 100_000
    assert "mloop.analysis.summary" in mloop.model_registry().get_version("income", version).tags
    bad = subprocess.run([*command[:6], "--label", "salary"], capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 2 and "salary" in bad.stderr and "Traceback" not in bad.stderr
