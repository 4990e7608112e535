"""Registry fixtures: a client over SQLite or PostgreSQL, and a small trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from mloop.registry import RegistryClient
from mloop.tracking import TrackingClient


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings.load(home=str(tmp_path / "h"), db_url=db_url, user="alice")


@pytest.fixture
def registry(settings: Settings) -> RegistryClient:
    """The process-wide client for these stores (the one run.log_model uses too)."""
    from mloop.registry import registry_for

    return registry_for(settings)


@pytest.fixture
def tracking(settings: Settings) -> TrackingClient:
    return TrackingClient(settings)


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"distance_km": rng.uniform(1, 20, 60), "hour": rng.integers(0, 24, 60),
                         "weather": rng.choice(["dry", "rain", "snow"], 60)})


@pytest.fixture
def pipeline(frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["weather"]),
                              ("num", StandardScaler(), ["distance_km", "hour"])])
    y = frame["distance_km"] * 2 + frame["hour"] * 0.1
    return Pipeline([("prep", prep), ("model", Ridge())]).fit(frame, y)


def log_version(tracking: TrackingClient, model, frame, name: str = "eta",  # type: ignore[no-untyped-def]
                metrics: dict[str, float] | None = None, tags: dict[str, str] | None = None):
    """Train-run stand-in: one run with metrics and a dataset, its model logged and registered."""
    from mloop._sdk import ActiveRun

    with tracking.start_run("eta-exp", run_class=ActiveRun, tags=tags) as run:
        run.log_metrics(metrics or {"mae": 1.0})
        run.log_input(frame, name="train", context="train")
        assert isinstance(run, ActiveRun)
        return run.log_model(model, name=name, input_example=frame.head(3))
