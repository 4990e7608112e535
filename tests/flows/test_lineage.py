"""A model trained in a flow step on a feature-store training set knows its flow run, step, data and features."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mloop
import mloop.flows as flows
from mloop.config import Settings
from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64, String
from mloop.registry import registry_for
from mloop.tracking.datasets import describe_dataset
from tests.server.conftest import serve

HOURS = pd.date_range("2026-03-28 00:00", "2026-03-30 23:00", freq="h", tz="Europe/Paris")  # DST on the 29th
ZONES = 40


def trip_rows(rng: np.random.Generator) -> pd.DataFrame:
    """Hourly per-zone trip features: floats with 15% nulls, a weather category, counts; Paris time across DST."""
    zone, hour = np.meshgrid(np.arange(ZONES), np.arange(len(HOURS)), indexing="ij")
    n = zone.size
    fare = rng.gamma(4.0, 3.0, n)
    fare[rng.random(n) < 0.15] = np.nan
    weather = rng.choice(np.array(["clear", "rain", "snow", "fog"], dtype=object), n, p=[0.6, 0.25, 0.1, 0.05])
    weather[rng.random(n) < 0.12] = None
    return pd.DataFrame({"zone_id": zone.ravel().astype("int64"), "avg_fare": fare,
                         "trips_1h": rng.poisson(20, n).astype("int64"), "weather": weather,
                         "event_timestamp": HOURS[hour.ravel()].tz_convert("UTC")})


@pytest.fixture
def feature_home(tmp_path: Path, db_url: str) -> Settings:
    """A home (metadata on SQLite or PostgreSQL) whose feature store has zone_trips@1 over 2,880 Parquet rows."""
    settings = Settings.load(home=str(tmp_path / "flow-home"), db_url=db_url)
    folder = tmp_path / "trips"
    folder.mkdir()
    trip_rows(np.random.default_rng(7)).to_parquet(folder / "part-0.parquet", index=False)
    zone = Entity("zone", join_keys=["zone_id"], key_types=[Int64])
    view = FeatureView("zone_trips", entities=["zone"], ttl=timedelta(hours=3), source=FileSource(str(folder)),
                       schema=[Field("avg_fare", Float64), Field("trips_1h", Int64), Field("weather", String)])
    store = FeatureStore(settings=settings)
    store.apply([zone, view])
    store.close()
    return settings


FLOW = """
import numpy as np
import pandas as pd
from mloop.features import FeatureStore
from mloop.flows import FlowSpec, Parameter, current, step

FEATURES = ["zone_trips:avg_fare", "zone_trips:trips_1h", "zone_trips:weather"]


def entity_rows(seed, n):
    rng = np.random.default_rng(seed)
    hours = pd.date_range("2026-03-28 02:00", "2026-03-30 22:00", freq="h", tz="Europe/Paris")
    return pd.DataFrame({"zone_id": rng.integers(0, 40, n).astype("int64"),
                         "event_timestamp": hours[rng.integers(0, len(hours), n)],
                         "minutes": rng.gamma(3.0, 6.0, n)})


class TrainEta(FlowSpec):
    alpha = Parameter(float, default=1.0, min=0)

    @step
    def start(self):
        store = FeatureStore()
        self.holdout = store.training_set(entity_rows(1, 300), features=FEATURES)
        self.next(self.train)

    @step
    def train(self):
        from sklearn.compose import make_column_transformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder

        store = FeatureStore()
        train = store.training_set(entity_rows(2, 1500), features=FEATURES)
        X, y = train[["avg_fare", "trips_1h", "weather"]], train["minutes"]
        X = X.assign(weather=X["weather"].fillna("unknown"))
        model = make_pipeline(
            make_column_transformer((SimpleImputer(), ["avg_fare", "trips_1h"]),
                                    (OneHotEncoder(handle_unknown="ignore"), ["weather"])),
            Ridge(alpha=self.alpha)).fit(X, y)
        current.log_metrics({"rows": float(len(train))})
        self.version = current.log_model(model, "eta", input_example=X.head(5)).version
        self.train_rows = len(train)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_model_trained_in_a_flow_step_shows_its_flow_run_step_datasets_and_features(
        write_flow, feature_home: Settings) -> None:
    run = flows.run(str(write_flow(FLOW)), {"alpha": 0.5}, settings=feature_home)
    registry = registry_for(feature_home)
    lineage = registry.lineage("eta", run.data.version)

    flow = lineage["flow"]
    train_task = run["train"].task.id
    assert flow["name"] == "TrainEta" and flow["run_id"] == run.id
    assert flow["params"] == {"alpha": 0.5}
    assert (flow["step"], flow["task_id"]) == ("train", train_task)
    assert lineage["run"]["run_id"] == train_task and lineage["run"]["metrics"]["rows"] == 1500.0

    [train] = lineage["datasets"]  # what the version's own step read
    assert (train["name"], train["context"], train["rows"], train["run_id"]) == (
        "training-set", "training", 1500, train_task)
    assert train["schema"]["weather"] in ("str", "object") and train["schema"]["avg_fare"] == "float64"
    assert train["source"] == ("features://default/zone_trips@1"
                               "?features=zone_trips:avg_fare,zone_trips:trips_1h,zone_trips:weather")
    # every dataset the flow run read, with the step that read it: the holdout built in `start` too
    assert [(d["step"], d["rows"]) for d in flow["datasets"]] == [("start", 300), ("train", 1500)]
    assert flow["datasets"][0]["digest"] == describe_dataset(run.data.holdout).digest
    assert lineage["feature_views"] == [{"project": "default", "name": "zone_trips", "version": 1, "features": [
        "zone_trips:avg_fare", "zone_trips:trips_1h", "zone_trips:weather"]}]
    task_run = registry.runs.get_run(train_task)
    assert task_run.tags["mloop.features.views"] == "zone_trips@1"

    # both datasets lead back to the version: the one its step read, and the one another step of its run read
    for dataset in flow["datasets"]:
        assert [(v.name, v.version) for v in registry.versions_trained_on(dataset["digest"])] == [
            ("eta", run.data.version)]

    from mloop.cli import _register, app

    _register()
    printed = CliRunner().invoke(app, ["models", "lineage", "eta", str(run.data.version), "--home",
                                       feature_home.home], env={"MLOOP_DB_URL": feature_home.db_url},
                                 catch_exceptions=False)
    assert printed.exit_code == 0, printed.output
    shown = json.loads(printed.output)
    assert shown["flow"]["run_id"] == run.id and shown["flow"]["step"] == "train"
    assert shown["flow"]["params"] == {"alpha": 0.5} and shown["feature_views"][0]["name"] == "zone_trips"

    for server in serve(feature_home):
        answer = httpx.get(f"{server.url}/api/registry/models/eta/versions/{run.data.version}/lineage", timeout=30)
        assert answer.status_code == 200
        assert answer.json()["flow"] == json.loads(json.dumps(flow))


def test_a_plain_run_records_the_training_set_it_builds(feature_home: Settings) -> None:
    rng = np.random.default_rng(3)
    when = pd.date_range("2026-03-29 00:30", periods=400, freq="7min", tz="Europe/Paris")
    entities = pd.DataFrame({"zone_id": rng.integers(0, ZONES, 400).astype("int64"), "event_timestamp": when})
    store = FeatureStore(settings=feature_home)
    mloop.configure(home=feature_home.home, db_url=feature_home.db_url)
    try:
        with mloop.start_run(experiment="eta-notebook") as run:
            train = store.training_set(entities, features=["zone_trips:avg_fare", "zone_trips:weather"])
            with run.start_run("fit") as fit:  # a nested run fits on what its parent built
                from sklearn.linear_model import LinearRegression

                X = train[["avg_fare"]].fillna(train["avg_fare"].mean())
                version = fit.log_model(LinearRegression().fit(X, np.arange(len(X))), "eta-plain").version
        outside = store.training_set(entities, features=["zone_trips:trips_1h"])  # no run: nothing recorded
    finally:
        store.close()
    assert len(train) == 400 and len(outside) == 400
    [(dataset, context)] = mloop.client().repo.list_inputs(run.run_id)
    assert context == "training" and dataset.rows == 400
    assert dataset.source.endswith("?features=zone_trips:avg_fare,zone_trips:weather")
    assert mloop.get_run(run.run_id).tags["mloop.features.views"] == "zone_trips@1"
    lineage = registry_for(feature_home).lineage("eta-plain", version)
    assert lineage["flow"] is None and [(d["run_id"], d["digest"]) for d in lineage["datasets"]] == [
        (run.run_id, dataset.digest)]
    assert lineage["feature_views"] == [{"project": "default", "name": "zone_trips", "version": 1,
                                         "features": ["zone_trips:avg_fare", "zone_trips:weather"]}]
