"""Models cross between mlflow and mloop through a live server: a model the mlflow client logged is one mloop
registers, loads, serves over HTTP and batch-scores; a model mloop logged loads with ``mlflow.pyfunc``; and an
MLflow pickle never loads in mloop without the user's trust."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mloop.errors import InvalidInputError
from mloop.registry import RegistryClient, load_model, save_model
from mloop.serving.batch import batch_predict
from tests.server.mlflow import _registry_fixtures as fixtures
from tests.serving.conftest import serve_process

# this module's fixtures: a fresh server per test, runs made through mloop's own store
mlflow_server = fixtures.mlflow_server


@pytest.fixture
def wine() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_wine(return_X_y=True, as_frame=True)
    X = X.copy()
    X.loc[X.sample(frac=0.1, random_state=1).index, "magnesium"] = np.nan  # a gap the imputer-free model sees as NaN
    return X.fillna(X.mean()), y


def test_a_model_the_mlflow_client_logged_is_registered_served_and_batch_scored(mlflow_server, wine, tmp_path,
                                                                                monkeypatch):
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn

    monkeypatch.setenv("MLFLOW_ALLOW_MODEL_CODE_EXECUTION", "true")  # the mlflow client's own opt-in to load
    X, y = wine
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    info = mlflow.sklearn.log_model(model, name="wine", registered_model_name="wine", input_example=X.head(3),
                                    pip_requirements=["scikit-learn"])  # no slow inference of requirements
    assert str(info.registered_model_version) == "1"
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("wine", "champion", "1")
    expected = model.predict(X)

    through_mlflow = mlflow.pyfunc.load_model("models:/wine@champion")
    assert (np.asarray(through_mlflow.predict(X)) == expected).all()

    registry = RegistryClient(mlflow_server.settings)
    version = registry.resolve("models:/wine@champion")
    assert (version.flavor, version.source) == ("sklearn", f"models:/{info.model_id}")
    loaded = load_model("models:/wine@champion", client=registry)  # skops: mloop's own list of safe types
    assert (np.asarray(loaded.predict(X)) == expected).all()

    stores = {"MLOOP_HOME": mlflow_server.settings.home, "MLOOP_DB_URL": mlflow_server.settings.db_url}
    with serve_process(["models:/wine@champion", "--no-log", "--reload-seconds", "0"], env=stores) as (url, _):
        answer = httpx.post(f"{url}/invocations", json={"dataframe_split": X.head(20).to_dict(orient="split")},
                            timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == expected[:20].tolist()

    X.to_parquet(tmp_path / "in.parquet")
    result = batch_predict("models:/wine@champion", str(tmp_path / "in.parquet"), str(tmp_path / "out"),
                           client=registry)
    scored = pd.read_parquet(tmp_path / "out")
    assert result.rows == len(X) and (scored["prediction"].to_numpy() == expected).all()


def test_a_pickled_mlflow_model_loads_only_with_trust(mlflow_server, wine):
    import mlflow.sklearn

    X, y = wine
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    mlflow.sklearn.log_model(forest, name="forest", registered_model_name="forest",
                             serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
    registry = RegistryClient(mlflow_server.settings)
    assert registry.resolve("models:/forest/1").flavor == "python_function"
    with pytest.raises(InvalidInputError, match="trusted=True") as refused:
        load_model("models:/forest/1", client=registry)
    assert "pickle" in str(refused.value) and "mloop serve --trusted" in str(refused.value)
    trusted = load_model("models:/forest/1", client=registry, trusted=True)
    assert (np.asarray(trusted.predict(X)) == forest.predict(X)).all()


def test_a_model_mloop_logged_loads_with_mlflow_pyfunc(mlflow_server, tmp_path, monkeypatch):
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn

    monkeypatch.setenv("MLFLOW_ALLOW_MODEL_CODE_EXECUTION", "true")
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    registry = RegistryClient(mlflow_server.settings)
    registry.register("cancer", save_model(model, tmp_path / "m", input_example=X.head(5)) and tmp_path / "m")
    registry.set_alias("cancer", "champion", 1)

    through_pyfunc = mlflow.pyfunc.load_model("models:/cancer@champion")
    assert (np.asarray(through_pyfunc.predict(X)) == model.predict(X)).all()
    native = mlflow.sklearn.load_model("models:/cancer/1")
    assert (native.predict_proba(X) == model.predict_proba(X)).all()


def _halve(values):
    return values / 2


def test_only_types_mloop_trusts_unasked_are_listed_for_mlflow(tmp_path):
    """The MLmodel file lists types for MLflow's loader to trust: only ever ones mloop trusts without asking, so a
    model that needs the user's trust in mloop gets no MLmodel file at all."""
    import yaml
    from sklearn.preprocessing import FunctionTransformer

    X, y = load_wine(return_X_y=True, as_frame=True)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)  # holds sklearn Trees
    save_model(forest, tmp_path / "forest")
    listed = yaml.safe_load((tmp_path / "forest" / "MLmodel").read_text())
    assert listed["flavors"]["sklearn"]["skops_trusted_types"] == ["sklearn.tree._tree.Tree"]  # bounds-checked

    custom = make_pipeline(FunctionTransformer(_halve), StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    save_model(custom, tmp_path / "custom")
    assert not (tmp_path / "custom" / "MLmodel").exists()


def _tracking_api_mounted(url: str) -> bool:
    return httpx.post(url + "/api/2.0/mlflow/runs/create", json={}).status_code != 404


def test_log_model_in_a_run_then_register_it_by_its_runs_uri(mlflow_server, wine, monkeypatch):
    """The whole user script: start a run, log the model in it, register ``runs:/<run>/model``, load it back."""
    if not _tracking_api_mounted(mlflow_server.url):
        pytest.skip("needs mlflow-tracking branch (MLflow's runs API), which mounts on the same prefixes")
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn

    monkeypatch.setenv("MLFLOW_ALLOW_MODEL_CODE_EXECUTION", "true")
    X, y = wine
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_param("max_iter", 2000)
        mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "wine-run")
    loaded = mlflow.pyfunc.load_model(f"models:/wine-run/{version.version}")
    assert (np.asarray(loaded.predict(X)) == model.predict(X)).all()
    registry = RegistryClient(mlflow_server.settings)
    assert registry.get_version("wine-run", int(version.version)).run_id == run.info.run_id
