"""Automation fixtures: stores on SQLite (PostgreSQL where the claim logic matters), and a registered model with
a champion trained on the diabetes data set that ships with scikit-learn."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mloop.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(home=str(tmp_path / "home"), db_url=f"sqlite:///{tmp_path / 'meta.db'}", user="ct")


def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    return data.data, data.target


def register(settings: Settings, model: object, frame: pd.DataFrame, name: str = "eta") -> int:
    """Train-run stand-in: one tracked run whose model is registered under ``name``; returns the version."""
    from mloop._sdk import ActiveRun
    from mloop.tracking import TrackingClient

    with TrackingClient(settings).start_run("ct", run_class=ActiveRun) as run:
        assert isinstance(run, ActiveRun)
        return run.log_model(model, name=name, input_example=frame.head(3)).version


@pytest.fixture
def holdout(tmp_path: Path) -> str:
    """The last 100 diabetes rows with their target, as a Parquet file."""
    x, y = diabetes()
    path = tmp_path / "holdout.parquet"
    x.tail(100).assign(target=y.tail(100)).to_parquet(path)
    return str(path)


@pytest.fixture
def champion(settings: Settings) -> int:
    """A weak champion (a heavily regularised ridge) at alias ``champion``."""
    return weak_champion(settings)


def weak_champion(settings: Settings) -> int:
    """A weak champion (a heavily regularised ridge) registered as ``eta`` at alias ``champion``."""
    from sklearn.linear_model import Ridge

    from mloop.registry import registry_for

    x, y = diabetes()
    version = register(settings, Ridge(alpha=50.0).fit(x.head(300), y.head(300)), x)
    registry_for(settings).set_alias("eta", "champion", version)
    return version


def champion_and_challenger(settings: Settings, challenger_alpha: float = 0.1) -> tuple[int, int]:
    """The weak champion, and a ridge challenger (better at a small ``challenger_alpha``, worse at a huge one)."""
    from sklearn.linear_model import Ridge

    champion = weak_champion(settings)
    x, y = diabetes()
    return champion, register(settings, Ridge(alpha=challenger_alpha).fit(x.head(300), y.head(300)), x)
