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


def champion_and_challenger(settings: Settings, better: bool = True) -> tuple[int, int]:
    """The weak champion (mae ~64), and a ridge challenger: a fit to the target (better, mae ~44) or to the
    target plus 200 (worse, mae ~200).

    The worse one must be worse on any handful of rows: a canary compares the two on different requests, so a
    challenger only a little worse overall (a near-constant ridge, mae ~65) looks better on about half of the
    samples of twenty.
    """
    from sklearn.linear_model import Ridge

    champion = weak_champion(settings)
    x, y = diabetes()
    target = y.head(300) if better else y.head(300) + 200
    return champion, register(settings, Ridge(alpha=0.1).fit(x.head(300), target), x)
