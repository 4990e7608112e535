"""The mlflow client's tracking calls against a live ``mloop server``: experiments, runs, data, search."""

from __future__ import annotations

import math
import time

import pytest

pytest.importorskip("mlflow")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag, ViewType  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402


def test_experiments_lifecycle(tracking_uri: str) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("eta-exp", tags={"team": "maps"})
    assert exp_id.isdigit()
    assert client.get_experiment(exp_id).tags == {"team": "maps"}
    assert client.get_experiment_by_name("eta-exp").experiment_id == exp_id
    assert client.get_experiment_by_name("no-such-experiment") is None
    client.set_experiment_tag(exp_id, "owner", "ana")
    client.rename_experiment(exp_id, "eta-exp-2")
    got = client.get_experiment(exp_id)
    assert got.name == "eta-exp-2" and got.tags == {"team": "maps", "owner": "ana"}
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert exp_id not in {e.experiment_id for e in client.search_experiments()}
    assert exp_id in {e.experiment_id for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)}
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_search_experiments_filters_orders_and_pages(tracking_uri: str) -> None:
    client = MlflowClient()
    for i in range(5):
        client.create_experiment(f"paged-{i}", tags={"parity": "even" if i % 2 == 0 else "odd"})
    found = client.search_experiments(filter_string="name LIKE 'paged-%' and tags.parity = 'even'",
                                      order_by=["name DESC"])
    assert [e.name for e in found] == ["paged-4", "paged-2", "paged-0"]
    first = client.search_experiments(filter_string="name LIKE 'paged-%'", order_by=["name"], max_results=2)
    second = client.search_experiments(filter_string="name LIKE 'paged-%'", order_by=["name"], max_results=2,
                                       page_token=first.token)
    assert [e.name for e in first] + [e.name for e in second] == ["paged-0", "paged-1", "paged-2", "paged-3"]


def test_fluent_run_logs_everything_the_client_reads_back(tracking_uri: str) -> None:
    mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="fit-1", tags={"team": "eta"}) as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"model": "ridge", "depth": 3})
        for step in range(5):
            mlflow.log_metric("rmse", 5.0 - step, step=step)
        mlflow.log_metrics({"mae": float("nan"), "r2": 0.75})
        mlflow.set_tag("stage", "dev")
    client = MlflowClient()
    seen = client.get_run(run.info.run_id)
    assert len(seen.info.run_id) == 32 and seen.info.status == "FINISHED"
    assert seen.info.end_time >= seen.info.start_time > 0
    assert seen.info.artifact_uri == f"mlflow-artifacts:/{seen.info.experiment_id}/{seen.info.run_id}/artifacts"
    assert seen.data.params == {"lr": "0.1", "model": "ridge", "depth": "3"}
    assert seen.data.metrics["rmse"] == 1.0 and math.isnan(seen.data.metrics["mae"])
    assert seen.data.tags["team"] == "eta" and seen.data.tags["stage"] == "dev"
    assert seen.data.tags["mlflow.runName"] == "fit-1"
    history = client.get_metric_history(run.info.run_id, "rmse")
    assert [(m.step, m.value) for m in history] == [(s, 5.0 - s) for s in range(5)]
    assert all(abs(m.timestamp - time.time() * 1000) < 600_000 for m in history)  # milliseconds


def test_run_update_tags_delete_restore(tracking_uri: str) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("run-edits")
    run = client.create_run(exp_id, run_name="first-name", start_time=1_600_000_000_000)
    client.set_tag(run.info.run_id, "temp", "1")
    client.delete_tag(run.info.run_id, "temp")
    client.set_tag(run.info.run_id, "mlflow.runName", "between-names")
    assert client.get_run(run.info.run_id).info.run_name == "between-names"
    client.update_run(run.info.run_id, name="second-name")
    client.log_batch(run.info.run_id, metrics=[Metric("loss", 0.5, 1_700_000_000_000, 3)],
                     params=[Param("optimizer", "adam")], tags=[RunTag("note", "batch")])
    client.set_terminated(run.info.run_id, status="KILLED", end_time=1_600_000_360_000)
    seen = client.get_run(run.info.run_id)
    assert seen.info.run_name == "second-name" and seen.info.status == "KILLED"
    assert (seen.info.start_time, seen.info.end_time) == (1_600_000_000_000, 1_600_000_360_000)
    assert "temp" not in seen.data.tags and seen.data.tags["note"] == "batch"
    assert seen.data.params == {"optimizer": "adam"}
    assert client.get_metric_history(run.info.run_id, "loss")[0].timestamp == 1_700_000_000_000
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([exp_id]) == []
    assert len(client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == 1
    client.restore_run(run.info.run_id)
    assert [r.info.run_id for r in client.search_runs([exp_id])] == [run.info.run_id]


def test_default_experiment_zero(tracking_uri: str) -> None:
    with mlflow.start_run(experiment_id="0") as run:
        mlflow.log_metric("x", 1.0)
    default = MlflowClient().get_experiment("0")
    assert default.name == "Default" and run.info.experiment_id == default.experiment_id
    assert [r.info.run_id for r in MlflowClient().search_runs(["0"], "metrics.x = 1")] == [run.info.run_id]


def test_search_runs_with_mlflow_filter_syntax(tracking_uri: str) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("filters")
    ids = {}
    for i, (model, team) in enumerate([("ridge", "eta-maps"), ("forest", "eta-core"), ("ridge", "search")]):
        run = client.create_run(exp_id, run_name=f"r{i}", tags={"team": team})
        client.log_batch(run.info.run_id, metrics=[Metric("rmse", 1.0 + i, 0, 0)], params=[Param("model", model)])
        if i < 2:
            client.set_terminated(run.info.run_id)
        ids[i] = run.info.run_id

    def search(flt: str, order: list[str] | None = None) -> list[str]:
        return [r.info.run_id for r in client.search_runs([exp_id], flt, order_by=order)]

    assert search("metrics.rmse > 1 and params.model = 'ridge'") == [ids[2]]
    assert search("tags.team LIKE 'eta-%'", ["metrics.rmse DESC"]) == [ids[1], ids[0]]
    assert search("attributes.status = 'FINISHED'", ["attributes.run_name ASC"]) == [ids[0], ids[1]]
    assert search("attributes.status != 'FINISHED'") == [ids[2]]
    assert search(f"attributes.run_id IN ('{ids[0]}', '{ids[2]}')", ["metrics.rmse"]) == [ids[0], ids[2]]
    assert search("attributes.run_name = 'r1' and attributes.user_id != 'nobody'") == [ids[1]]
    assert search("", ["metrics.rmse ASC"]) == [ids[0], ids[1], ids[2]]


def test_log_inputs_dataset_round_trip(tracking_uri: str) -> None:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    dataset = mlflow.data.from_pandas(frame, name="wine", targets="target")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")  # the same input twice is one input
    [given] = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert given.dataset.name == "wine" and given.dataset.digest == dataset.digest
    assert given.dataset.source_type == dataset.source._get_source_type()
    assert given.dataset.source == dataset.source.to_json()
    assert "alcohol" in given.dataset.schema and '"num_rows": 178' in given.dataset.profile
    assert {t.key: t.value for t in given.tags} == {"mlflow.data.context": "training"}


def test_system_metrics_are_metrics_with_a_prefix(tracking_uri: str) -> None:
    pytest.importorskip("psutil")
    from mlflow.system_metrics import set_system_metrics_samples_before_logging, set_system_metrics_sampling_interval

    set_system_metrics_sampling_interval(0.2)
    set_system_metrics_samples_before_logging(1)
    try:
        with mlflow.start_run(log_system_metrics=True) as run:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    k.startswith("system/") for k in MlflowClient().get_run(run.info.run_id).data.metrics):
                time.sleep(0.3)
    finally:
        set_system_metrics_sampling_interval(None)
        set_system_metrics_samples_before_logging(None)
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics and "system/system_memory_usage_megabytes" in metrics


def test_param_cannot_change(tracking_uri: str) -> None:
    with mlflow.start_run():
        mlflow.log_param("alpha", "0.1")
        mlflow.log_param("alpha", "0.1")  # the same value again is fine, as on MLflow's server
        with pytest.raises(MlflowException) as caught:
            mlflow.log_param("alpha", "0.2")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE" and "alpha" in caught.value.message


def test_a_finished_run_takes_more_data_as_on_mlflow(tracking_uri: str) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("train_loss", 0.3)
    client = MlflowClient()
    client.log_metric(run.info.run_id, "test_loss", 0.4)  # e.g. autolog's post-training score
    client.log_param(run.info.run_id, "evaluated_on", "holdout")
    seen = client.get_run(run.info.run_id)
    assert seen.info.status == "FINISHED" and seen.data.metrics == {"train_loss": 0.3, "test_loss": 0.4}
    assert seen.data.params == {"evaluated_on": "holdout"}
