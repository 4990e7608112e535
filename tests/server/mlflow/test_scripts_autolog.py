"""A user's sklearn training script with ``mlflow.sklearn.autolog()``, run as-is against ``mloop server``; its run
then reads the same through mloop's SDK and CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import mloop
from mloop.cli import _register, app
from tests.server.conftest import LiveServer

pytest.importorskip("mlflow")

SCRIPT = """
import mlflow
from sklearn.datasets import {loader}
from sklearn.linear_model import {estimator}
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

mlflow.set_experiment("{experiment}")
mlflow.sklearn.autolog(log_models={log_models}, log_datasets=True, silent=True)
X, y = {loader}(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
with mlflow.start_run(run_name="{experiment}-fit") as run:
    model = make_pipeline(StandardScaler(), {estimator}({args})).fit(X_train, y_train)
    mlflow.log_metric("test_score", model.score(X_test, y_test))
print(run.info.run_id)
"""


# a regression logs its metrics before any artifact; a classification also plots (artifacts through the proxy)
DIABETES = {"loader": "load_diabetes", "estimator": "Ridge", "args": "alpha=0.5", "experiment": "diabetes"}
CANCER = {"loader": "load_breast_cancer", "estimator": "LogisticRegression", "args": "C=0.5, max_iter=500",
          "experiment": "cancer"}


def run_script(tmp_path: Path, uri: str, log_models: bool, **recipe: str) -> str:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT.format(log_models=log_models, **recipe)))
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_autolog_script_logs_params_metrics_and_dataset(tracking_uri: str, mlflow_server: LiveServer,
                                                        tmp_path: Path) -> None:
    from mlflow import MlflowClient

    run_id = run_script(tmp_path, tracking_uri, log_models=False, **DIABETES)
    seen = MlflowClient().get_run(run_id)
    assert seen.info.status == "FINISHED" and seen.info.run_name == "diabetes-fit"
    assert seen.data.params["ridge__alpha"] == "0.5" and seen.data.params["standardscaler__with_mean"] == "True"
    if _has_artifact_proxy(mlflow_server):  # autolog sends its training metrics after estimator.html
        assert 0.3 < seen.data.metrics["training_r2_score"] <= 1.0
    assert 0.3 < seen.data.metrics["test_score"] <= 1.0
    datasets = seen.inputs.dataset_inputs
    assert datasets and datasets[0].dataset.digest and '"bmi"' in datasets[0].dataset.schema
    assert {t.key: t.value for t in datasets[0].tags}.get("mlflow.data.context") == "train"

    # the same run through mloop's SDK (over the same server) ...
    mloop.configure(tracking_uri=tracking_uri)
    run = mloop.get_run(run_id)
    assert {k: str(v) for k, v in run.params.items()} == seen.data.params
    assert run.metrics == pytest.approx(seen.data.metrics)
    frame = mloop.search_runs("diabetes", filter="params.ridge__alpha = '0.5'")
    assert frame["run_id"].tolist() == [run_id]

    # ... and through its CLI
    _register()
    done = CliRunner().invoke(app, ["runs", "list", "diabetes", "--json"], env={"MLOOP_TRACKING_URI": tracking_uri,
                                                                             "COLUMNS": "500"})
    assert done.exit_code == 0, done.output
    [row] = json.loads(done.stdout)
    assert row["run_id"] == run_id and row["status"] == "finished"
    for key, value in seen.data.metrics.items():
        assert math.isclose(row[f"metrics.{key}"], value)
    for key, value in seen.data.params.items():
        assert str(row[f"params.{key}"]) == value


def _has_artifact_proxy(server: LiveServer) -> bool:
    """Whether the server mounts MLflow's artifact proxy (its listing answers; an unknown path is a 404)."""
    return httpx.get(server.url + "/api/2.0/mlflow-artifacts/artifacts", params={"path": ""}).status_code != 404


def test_autolog_script_logs_the_model_through_the_proxy(tracking_uri: str, mlflow_server: LiveServer,
                                                         tmp_path: Path) -> None:
    """Switched on by the artifact proxy and logged-model endpoints (branch mlflow-registry) once merged."""
    if not _has_artifact_proxy(mlflow_server):
        pytest.skip("the server has no mlflow-artifacts proxy yet (branch mlflow-registry)")
    import mlflow

    run_id = run_script(tmp_path, tracking_uri, log_models=True, **CANCER)
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"estimator.html", "training_confusion_matrix.png"} <= names
    assert mlflow.MlflowClient().get_run(run_id).data.metrics["training_accuracy_score"] > 0.9
    model = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
    from sklearn.datasets import load_breast_cancer

    assert model.predict(load_breast_cancer().data[:3]).shape == (3,)
