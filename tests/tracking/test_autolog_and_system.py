"""scikit-learn autologging and system metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

import mloop


@pytest.fixture
def sdk(home) -> Iterator[None]:  # type: ignore[no-untyped-def]
    mloop.configure(home=str(home))
    yield
    mloop.autolog(disable=True)


def test_autolog_logs_params_metrics_and_model(sdk: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    mloop.autolog()
    with mloop.start_run(experiment="auto") as run:
        make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y)
    stored = mloop.get_run(run.run_id)
    assert stored.params["logisticregression__C"] == 0.5
    assert stored.metrics["training_accuracy"] > 0.9
    assert stored.tags["estimator_class"] == "sklearn.pipeline.Pipeline"
    [artifact] = run.list_artifacts("model")
    assert artifact.path == "model/model.skops" and artifact.size > 0
    import skops.io as sio

    path = run.download_artifacts("model/model.skops", tmp_path / "m.skops")
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert (loaded.predict(X) == y).mean() > 0.9


def test_autolog_without_an_active_run_creates_one(sdk: None) -> None:
    from sklearn.linear_model import Ridge

    mloop.autolog(log_models=False)
    Ridge(alpha=2.0).fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
    frame = mloop.search_runs("Default", filter="params.alpha = 2.0")
    assert len(frame) == 1 and frame["status"].iloc[0] == "finished"
    assert frame["metrics.training_r2"].iloc[0] > 0.99


def test_system_metrics_are_sampled(sdk: None) -> None:
    with mloop.start_run(experiment="sys", system_metrics_interval=0.1) as run:
        time.sleep(0.45)
    metrics = mloop.get_run(run.run_id).metrics
    assert 0 <= metrics["system/cpu_percent"] <= 100 * 64
    assert metrics["system/process_rss_mb"] > 10
    assert len(mloop.client().metric_history(run.run_id, "system/memory_percent")) >= 2
