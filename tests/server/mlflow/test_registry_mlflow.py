"""MLflow's model registry API with the real ``MlflowClient`` against a live server: registered models, versions,
aliases, tags, search with paging, stages as mloop environments, logged models, and errors in MLflow's format."""

from __future__ import annotations

import httpx
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from mloop.registry import RegistryClient
from tests.server.mlflow import _registry_fixtures as fixtures

# this module's fixtures: a fresh server per test, runs made through mloop's own store
mlflow_server = fixtures.mlflow_server
run_id = fixtures.run_id
tracking = fixtures.tracking


@pytest.fixture
def client(mlflow_server):
    import mlflow

    return mlflow.MlflowClient()


@pytest.fixture
def mlflow_model_in_run(mlflow_server, run_id, tmp_path) -> str:
    """An MLflow sklearn model uploaded through the proxy into a run's artifacts at 'model'."""
    import mlflow.sklearn
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    mlflow.sklearn.save_model(Ridge(alpha=0.5).fit(X, y), str(tmp_path / "ridge"), pip_requirements=["scikit-learn"])
    get_artifact_repository(f"mlflow-artifacts:/1/{run_id}/artifacts").log_artifacts(str(tmp_path / "ridge"), "model")
    return run_id


def _code(excinfo) -> str:
    return excinfo.value.error_code


def test_registered_models_tags_aliases_and_errors(client, mlflow_server):
    from mlflow.exceptions import MlflowException

    created = client.create_registered_model("eta", tags={"team": "ml"}, description="trip durations")
    assert (created.name, created.description, created.tags) == ("eta", "trip durations", {"team": "ml"})
    with pytest.raises(MlflowException) as taken:
        client.create_registered_model("eta")
    assert _code(taken) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model("no-such-model")
    assert _code(missing) == "RESOURCE_DOES_NOT_EXIST" and "no-such-model" in missing.value.message

    client.update_registered_model("eta", description="minutes per trip")
    client.set_registered_model_tag("eta", "owner", "ops")
    client.delete_registered_model_tag("eta", "team")
    got = client.get_registered_model("eta")
    assert (got.description, got.tags) == ("minutes per trip", {"owner": "ops"})
    # mloop's own SDK sees the same model
    assert RegistryClient(mlflow_server.settings).get_model("eta").tags == {"owner": "ops"}
    with pytest.raises(MlflowException) as rename:
        client.rename_registered_model("eta", "eta2")
    assert "not supported" in rename.value.message
    client.delete_registered_model("eta")
    with pytest.raises(MlflowException):
        client.get_registered_model("eta")


def test_search_pages_through_models_with_a_filter(client):
    from mlflow.exceptions import MlflowException

    for name in ("eta-a", "eta-b", "eta-c", "eta-d", "eta-e", "fare"):
        client.create_registered_model(name, tags={"kind": "eta" if name.startswith("eta") else "fare"})
    seen, token = [], None
    while True:
        page = client.search_registered_models("name LIKE 'eta-%'", max_results=2, page_token=token,
                                               order_by=["name DESC"])
        seen += [m.name for m in page]
        token = page.token
        if not token:
            break
    assert seen == ["eta-e", "eta-d", "eta-c", "eta-b", "eta-a"]
    assert [m.name for m in client.search_registered_models("tags.kind = 'fare'")] == ["fare"]
    with pytest.raises(MlflowException) as bad:
        client.search_registered_models(page_token="forged")
    assert _code(bad) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as unreadable:
        client.search_registered_models("name = ")
    assert _code(unreadable) == "INVALID_PARAMETER_VALUE"


def test_versions_from_a_run_with_aliases_stages_and_tags(client, mlflow_server, mlflow_model_in_run, tmp_path,
                                                          monkeypatch):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    run_id = mlflow_model_in_run
    client.create_registered_model("diabetes")
    source = f"mlflow-artifacts:/1/{run_id}/artifacts/model"
    first = client.create_model_version("diabetes", source, run_id=run_id, tags={"data": "v1"})
    second = client.create_model_version("diabetes", source, run_id=run_id, description="same weights")
    assert (first.version, second.version, first.run_id, first.status) == ("1", "2", run_id, "READY")

    client.set_registered_model_alias("diabetes", "champion", "1")
    assert client.get_model_version_by_alias("diabetes", "champion").version == "1"
    client.set_model_version_tag("diabetes", "1", "checked", "yes")
    client.delete_model_version_tag("diabetes", "1", "data")
    client.update_model_version("diabetes", "2", description="challenger")
    got = client.get_model_version("diabetes", "1")
    assert (got.tags, got.aliases) == ({"checked": "yes"}, ["champion"])
    assert client.get_model_version("diabetes", "2").description == "challenger"
    assert [v.version for v in client.search_model_versions(f"run_id = '{run_id}'")] == ["2", "1"]
    assert client.get_model_version_download_uri("diabetes", "1").startswith("mlflow-artifacts:/registry/models/")

    monkeypatch.setenv("MLFLOW_ALLOW_MODEL_CODE_EXECUTION", "true")
    X, _ = load_diabetes(return_X_y=True, as_frame=True)
    loaded = mlflow.pyfunc.load_model("models:/diabetes@champion")
    assert loaded.predict(X.head(5)).shape == (5,)

    RegistryClient(mlflow_server.settings).environments.create("production")
    moved = client.transition_model_version_stage("diabetes", "2", "Production")
    assert moved.current_stage == "Production"
    assert [v.version for v in client.get_latest_versions("diabetes", stages=["Production"])] == ["2"]
    with pytest.raises(MlflowException) as archived:
        client.transition_model_version_stage("diabetes", "1", "Archived")
    assert "environments" in archived.value.message

    with pytest.raises(MlflowException) as deployed:
        client.delete_model_version("diabetes", "2")
    assert _code(deployed) == "INVALID_STATE" and "production" in deployed.value.message
    client.delete_model_version("diabetes", "1")  # its alias goes with it, as in MLflow
    with pytest.raises(MlflowException) as gone:
        client.get_model_version_by_alias("diabetes", "champion")
    assert _code(gone) == "RESOURCE_DOES_NOT_EXIST"


def test_logged_models_create_finalize_tag_and_search(client, run_id):
    from mlflow.entities import LoggedModelStatus
    from mlflow.exceptions import MlflowException

    made = client.create_logged_model("1", name="ridge", source_run_id=run_id, tags={"stage": "dev"},
                                      params={"alpha": "0.5"})
    assert made.model_id.startswith("m-") and made.status == LoggedModelStatus.PENDING
    assert made.artifact_location == f"mlflow-artifacts:/1/models/{made.model_id}/artifacts"
    client.finalize_logged_model(made.model_id, LoggedModelStatus.READY)
    client.set_logged_model_tags(made.model_id, {"reviewed": "yes"})
    client.delete_logged_model_tag(made.model_id, "stage")
    got = client.get_logged_model(made.model_id)
    assert (got.status, got.tags, got.params, got.source_run_id) == (
        LoggedModelStatus.READY, {"reviewed": "yes"}, {"alpha": "0.5"}, run_id)
    client.create_logged_model("1", name="other")
    assert [m.name for m in client.search_logged_models(["1"], filter_string="name = 'ridge'")] == ["ridge"]
    with pytest.raises(MlflowException) as missing:
        client.get_logged_model("m-" + "0" * 32)
    assert _code(missing) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as bad_run:
        client.create_logged_model("1", source_run_id="f" * 32)
    assert _code(bad_run) == "RESOURCE_DOES_NOT_EXIST"


def test_a_malformed_request_is_an_mlflow_error_not_a_stack_trace(mlflow_server):
    with httpx.Client(base_url=mlflow_server.url + "/api/2.0/mlflow") as api:
        for answer in (api.get("/model-versions/get", params={"name": "x", "version": "one"}),
                       api.post("/model-versions/create", json={"name": "x", "source": "file:///etc/passwd"}),
                       api.post("/registered-models/create", json={"name": 17}),
                       api.get("/logged-models/m-%2e%2e"),
                       api.post("/logged-models", json={"experiment_id": "1", "source_run_id": "../x"})):
            assert 400 <= answer.status_code < 500, answer.text
            body = answer.json()
            assert {"error_code", "message"} <= set(body) and "Traceback" not in body["message"], answer.url


def test_deleting_a_tag_on_sqlite_and_postgresql(db_url, tmp_path):
    """The one registry write MLflow's API needed that mloop lacked: dropping a tag, on both databases."""
    from mloop.config import Settings
    from mloop.registry import save_model

    registry = RegistryClient(Settings.load(home=str(tmp_path / "home"), db_url=db_url))
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    registry.create_model("tagged", tags={"team": "ml", "keep": "yes"})
    save_model(Ridge().fit(X, y), tmp_path / "m")
    registry.register("tagged", tmp_path / "m", tags={"data": "v1", "keep": "yes"})
    registry.delete_tag("tagged", "team")
    registry.delete_tag("tagged", "data", version=1)
    registry.delete_tag("tagged", "never-set")
    assert registry.get_model("tagged").tags == {"keep": "yes"}
    assert registry.get_version("tagged", 1).tags == {"keep": "yes"}
    assert [e.action for e in registry.audit("tagged", limit=2)] == ["model.updated", "version.updated"]
