"""The whole serving loop on messy data, once per flavor: scikit-learn pipeline with a ColumnTransformer,
HistGradientBoosting with native categories, LightGBM and XGBoost on pandas category columns.

Each classifier is trained on data with category and string columns and 10%+ nulls, logged with an input
example that holds no null (nullability comes from the training data), registered and given an alias,
served from ``models:/name@champion`` over real HTTP with JSON records that hold nulls and categories, and
batch-scored from a Parquet file with bad rows under every ``--on-invalid`` mode through the real CLI.
Every label and probability is compared with the in-memory model's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from mloop.registry import RegistryClient, log_model_to_run
from mloop.serving import EndpointConfig, ServeConfig
from mloop.tracking import TrackingClient
from tests.registry.test_categories import ZONES, trips
from tests.serving.conftest import running

TREES = ["km", "hour", "zone", "size"]
ALL = ["km", "hour", "zone", "size", "vendor"]


def deliveries(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The registry tests' trips (a category column 12% null, an ordered category, a string column 10% null,
    a float column 12% null, an integer hour), labelled 'early', 'on_time' or 'late' from all of them."""
    frame, _ = trips(n, seed)
    noise = np.random.default_rng(seed + 100).normal(0, 1, n)
    score = (np.nan_to_num(frame["km"].to_numpy(), nan=15.0) / 6 + frame["zone"].cat.codes.to_numpy() % 5
             + frame["size"].cat.codes.to_numpy() + (frame["hour"].to_numpy() > 16) * 2 + noise)
    labels = np.select([score < 3.5, score < 6.5], ["early", "on_time"], "late")
    return frame, labels


def classifiers() -> dict[str, tuple[Any, list[str]]]:
    """flavor -> (an unfitted classifier, the columns it takes)."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pipeline = Pipeline([
        ("prep", ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["km", "hour"]),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="unknown"),
                                  OneHotEncoder(handle_unknown="ignore")), ["zone", "size", "vendor"])])),
        ("model", LogisticRegression(max_iter=300))])
    return {
        "sklearn-pipeline": (pipeline, ALL),
        "hist-gradient-boosting": (HistGradientBoostingClassifier(max_iter=20, categorical_features="from_dtype"),
                                   TREES),
        "lightgbm": (lgb.LGBMClassifier(n_estimators=20, num_leaves=15, verbose=-1), TREES),
        "xgboost": (xgb.XGBClassifier(n_estimators=20, max_depth=4, enable_categorical=True, tree_method="hist"),
                    TREES),
    }


class Trained:
    """A classifier trained, logged and registered in its own home, with what the tests compare against."""

    def __init__(self, flavor: str, root: Path) -> None:
        self.flavor, self.home, self.name = flavor, root / "home", f"eta-{flavor}"
        model, self.columns = classifiers()[flavor]
        train, labels = deliveries(30_000, seed=1)
        self.encode = flavor == "xgboost"  # XGBoost takes class indices, so its labels are 0, 1, 2
        self.classes: list[Any] = [0, 1, 2] if self.encode else ["early", "late", "on_time"]
        target = np.searchsorted(["early", "late", "on_time"], labels) if self.encode else labels
        self.model = model.fit(train[self.columns], target)
        example = train[self.columns].dropna().head(20)
        assert not example.isna().any().any()
        self.settings = Settings.load(home=str(self.home))
        # explicit clients: a module fixture runs outside each test's isolated environment and run stack
        with TrackingClient(self.settings).start_run(experiment="eta") as run:
            log_model_to_run(self.settings, run.run_id, self.model, self.name, input_example=example,
                             training_data=train[self.columns])
        RegistryClient(self.settings).set_alias(self.name, "champion", 1)

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(frame[self.columns])

    def labels(self, frame: pd.DataFrame) -> list[Any]:
        return np.asarray(self.model.predict(frame[self.columns])).tolist()


@pytest.fixture(scope="module", params=list(classifiers()))
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return Trained(request.param, tmp_path_factory.mktemp(request.param))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """What a client sends: categories as strings, nulls as null."""
    return json.loads(frame.to_json(orient="records"))


def test_served_from_the_registry_answers_rows_with_nulls_and_categories_like_the_model(trained: Trained) -> None:
    fresh = deliveries(2_000, seed=7)[0][trained.columns]
    assert fresh["km"].isna().mean() > 0.1 and fresh["zone"].isna().mean() > 0.1
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri=f"models:/{trained.name}@champion"),))
    with running(config, trained.settings, RegistryClient(trained.settings)) as served:
        labels = served.post("/predict", records(fresh))
        assert labels.status_code == 200, labels.text
        assert labels.json()["predictions"] == trained.labels(fresh)
        both = served.post("/predict?output=both", records(fresh)).json()
        assert both["classes"] == trained.classes and both["predictions"] == trained.labels(fresh)
        np.testing.assert_allclose(both["probabilities"], trained.proba(fresh), atol=1e-6)
        one = served.post("/predict?output=proba", records(fresh.head(1))).json()
        np.testing.assert_allclose(one["predictions"], trained.proba(fresh.head(1)), atol=1e-6)

        bad = records(fresh.head(3))
        bad[1]["size"] = "XL"
        refused = served.post("/predict", bad)
        assert refused.status_code == 422, refused.text
        assert [(e["field"], e["value"], e["row"]) for e in refused.json()["errors"]] == [("size", "XL", 1)]


def batch(trained: Trained, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mloop", "batch-predict", f"models:/{trained.name}@champion",
                           *args, "--home", str(trained.home)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


def test_batch_scoring_a_parquet_file_with_bad_rows_under_each_mode(trained: Trained, tmp_path: Path) -> None:
    frame = deliveries(60_000, seed=9)[0].astype({"hour": "float64", "zone": object})
    rng = np.random.default_rng(3)
    no_hour = rng.choice(len(frame), 300, replace=False)  # hour is an integer that was never null
    unknown_zone = rng.choice(np.setdiff1d(np.arange(len(frame)), no_hour), 200, replace=False)
    frame.loc[no_hour, "hour"] = np.nan
    frame.loc[unknown_zone, "zone"] = "zone-99"
    frame.insert(0, "delivery_id", np.arange(len(frame)))
    source = tmp_path / "deliveries.parquet"
    frame.to_parquet(source, index=False)
    bad = np.union1d(no_hour, unknown_zone)

    failed = batch(trained, "-i", str(source), "-o", str(tmp_path / "fail"))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr

    skipped = batch(trained, "-i", str(source), "-o", str(tmp_path / "skip"), "--on-invalid", "skip",
                    "--predict-output", "both")
    assert skipped.returncode == 3, skipped.stderr
    rejects = pd.read_parquet(f"{tmp_path / 'skip'}.rejects")
    assert set(rejects["row"]) == set(bad.tolist())
    assert set(rejects.loc[rejects["row"].isin(no_hour), "field"]) == {"hour"}
    # one column holds values of every type, so each is its JSON text
    assert set(rejects.loc[rejects["row"].isin(unknown_zone), "value"].map(json.loads)) == {"zone-99"}

    good = frame.drop(index=bad).astype({"hour": "int64"})
    good["zone"] = pd.Categorical(good["zone"], categories=ZONES)
    scored = pd.read_parquet(tmp_path / "skip").set_index("delivery_id").loc[good["delivery_id"]]
    assert scored["prediction"].tolist() == trained.labels(good)
    np.testing.assert_allclose(scored[[f"proba_{c}" for c in trained.classes]].to_numpy(), trained.proba(good),
                               atol=1e-6)

    quarantined = batch(trained, "-i", str(source), "-o", str(tmp_path / "quarantine"), "--on-invalid", "quarantine")
    assert quarantined.returncode == 3, quarantined.stderr
    held = pd.read_parquet(f"{tmp_path / 'quarantine'}.quarantine")
    assert sorted(held["delivery_id"]) == sorted(bad.tolist())
    assert len(pd.read_parquet(tmp_path / "quarantine")) == len(frame) - len(bad)
