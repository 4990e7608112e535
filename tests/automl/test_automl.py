"""AutoML under a small budget registers a plain model that serves over HTTP and beats a baseline."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.automl import automl
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.registry import RegistryClient
from mloop.serving import ServeConfig
from mloop.serving.config import EndpointConfig
from tests.analysis.conftest import adult_like
from tests.serving.conftest import running


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def test_automl_registers_a_census_model_that_serves_and_beats_the_baseline(home: Path) -> None:
    data = adult_like(3000, seed=11)
    result = automl(data, target="income", time_budget=12, name="income-automl", n_jobs=1)
    majority = (data["income"] == data["income"].mode()[0]).mean()
    assert result.task == "classification" and result.metric == "roc_auc"
    assert result.holdout["roc_auc"] > 0.7 and result.holdout["accuracy"] >= majority - 0.01, result
    assert result.n_trials >= 1 and result.learner in ("lgbm", "histgb", "lrl1")

    model = mloop.load_model(result.uri)  # no trusted=True: a plain library model
    assert model.flavor in ("lightgbm", "sklearn", "xgboost")
    assert {c.name for c in model.signature.inputs} == set(data.columns) - {"income"}
    registry = mloop.model_registry()
    version = registry.get_version("income-automl", result.version)
    assert {"mloop.schema", "mloop.profile"} <= set(version.tags) or version.run_id == result.run_id
    runs = mloop.search_runs("income-automl")
    children = runs[runs["parent_run_id"] == result.run_id]
    assert len(children) == result.n_trials and children["params.learner"].notna().all()
    assert children["metrics.validation_loss"].notna().all()
    parent = mloop.get_run(result.run_id)
    assert parent.params["best_learner"] == result.learner
    assert math.isclose(parent.metrics["holdout_roc_auc"], result.holdout["roc_auc"])

    fresh = adult_like(200, seed=12).drop(columns="income")
    assert fresh["education"].isna().any() and fresh["age"].isna().any()
    expected = model.predict(fresh).tolist()
    settings = Settings.load(home=str(home))
    config = ServeConfig(endpoints=(EndpointConfig(name="income", uri=result.uri),))
    with running(config, settings, RegistryClient(settings)) as served:
        answer = served.post("/predict", _records(fresh))
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == expected
        assert set(expected) <= {"<=50K", ">50K"}


def test_cli_automl_on_a_regression_set(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    frame.to_parquet(tmp_path / "diabetes.parquet")
    command = [sys.executable, "-m", "mloop", "automl", str(tmp_path / "diabetes.parquet"), "--target", "target",
               "--time-budget", "4", "--name", "diabetes", "--jobs", "1", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["task"] == "regression" and result["metric"] == "r2" and result["uri"] == "models:/diabetes/1"
    baseline_rmse = float(frame["target"].std())
    assert result["holdout"]["r2"] > 0.05 and result["holdout"]["rmse"] < baseline_rmse  # beats predicting the mean
    model = mloop.load_model("models:/diabetes/1")
    assert np.isfinite(model.predict(frame.drop(columns="target").head(3))).all()


def test_bad_inputs_get_clear_errors(tmp_path: Path) -> None:
    frame = adult_like(200, seed=1)
    cases = [({"target": "salary"}, "target"), ({"target": "income", "time_budget": 0}, "time_budget"),
             ({"target": "income", "time_budget": -5}, "time_budget"),
             ({"target": "income", "time_budget": float("nan")}, "time_budget"),
             ({"target": "income", "time_budget": "10"}, "time_budget"),
             ({"target": "income", "metric": "r2"}, "metric"), ({"target": "income", "name": "bad/../name\n"}, "name"),
             ({"target": "income", "holdout": 1.5}, "holdout"), ({"target": "income", "n_jobs": 0}, "n_jobs"),
             ({"target": "income", "task": "ranking"}, "task")]
    for kwargs, field in cases:
        with pytest.raises(InvalidInputError) as err:
            automl(frame, **kwargs)
        assert err.value.field == field, (kwargs, err.value)
    with pytest.raises(InvalidInputError, match="every value is null") as err:
        automl(frame.assign(income=None), target="income")
    assert err.value.field == "target"
    with pytest.raises(InvalidInputError, match="two classes"):
        automl(frame.assign(income="<=50K"), target="income", time_budget=5)
    with pytest.raises(InvalidInputError) as err:
        automl(str(tmp_path / "missing.parquet"), target="income")
    assert err.value.field == "data"
    done = subprocess.run([sys.executable, "-m", "mloop", "automl", str(tmp_path / "missing.parquet"), "--target",
                           "y", "--time-budget", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "time_budget" in done.stderr and "Traceback" not in done.stderr
