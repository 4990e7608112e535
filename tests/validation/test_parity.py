"""Stored schemas and profiles, directly and through a live ``mloop server`` (the ``mode_settings`` fixture):
logged with a run's data set, attached to a model version, read back, and used as drift's reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import mloop
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.registry import registry_for, save_model
from mloop.tracking.client import TrackingClient
from mloop.validation import attach_to_model_version, drift, infer_schema, model_profile, model_schema, profile
from mloop.validation.attach import load_run_profile, load_run_schema, log_dataset


def _train(seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"hour": rng.integers(0, 24, 400), "km": rng.uniform(1, 9, 400) + shift,
                          "zone": rng.choice(["north", "south", "east"], 400)})
    frame.loc[rng.random(400) < 0.05, "km"] = np.nan
    return frame


def _store_settings(mode_settings: Settings, tmp_path: Path) -> Settings:
    """The settings that reach the stores themselves: the client's own in direct mode, else the server's."""
    if not mode_settings.remote:
        return mode_settings
    return Settings.load(home=str(tmp_path / "server-home"), tracking_uri="")


def test_run_and_model_version_schema_profile_round_trip_and_drift(mode_settings: Settings, tmp_path: Path) -> None:
    train = _train()
    with mloop.start_run(experiment="quality") as run:
        schema, prof = log_dataset(run, train, name="train")
        # the model's files as run artifacts (through the server in server mode; run.log_model(name=...) needs the
        # registry's HTTP client, which another branch builds)
        save_model(LinearRegression().fit(train[["hour"]], train["hour"] * 2), tmp_path / "model")
        run.log_artifacts(tmp_path / "model", "model")
    tracking = TrackingClient(mode_settings)
    assert load_run_schema(tracking, run.run_id) == schema == infer_schema(train)
    assert load_run_profile(tracking, run.run_id).to_dict() == prof.to_dict()
    with pytest.raises(NotFoundError) as caught:
        load_run_profile(tracking, run.run_id, "missing")
    assert caught.value.field == "dataset"

    # someone with the registry registers the run's model (the registry's own client is another branch's work)
    version = registry_for(_store_settings(mode_settings, tmp_path)).register("eta", f"runs:/{run.run_id}/model")
    with pytest.raises(NotFoundError, match="attach_to_model_version") as caught:
        model_schema("eta", version.version)
    assert caught.value.field == "mloop.schema"
    tagged = attach_to_model_version("eta", version.version, data=train)
    assert tagged.version == version.version and set(tagged.tags) >= {"mloop.schema", "mloop.profile"}
    assert model_schema("eta", version.version) == schema
    stored = model_profile("eta", version.version)
    assert stored.to_dict() == profile(train).to_dict()  # value samples too: drift's small-sample tests use them

    current = _train(seed=1, shift=3.0)
    against_stored = drift(reference=stored, current=current).to_dict()
    assert against_stored == drift(reference=profile(train), current=current).to_dict()
    assert against_stored["drifted_columns"] == ["km"]

    _cli_reads_what_is_stored(run.run_id, version.version, current, tmp_path)

    with pytest.raises(InvalidInputError) as caught:
        attach_to_model_version("eta", version.version)
    assert caught.value.field == "schema"
    with pytest.raises(NotFoundError):
        attach_to_model_version("eta", 99, data=train)
    if mode_settings.remote:
        home = Path(mode_settings.home)
        assert not (home / "mloop.db").exists() and not (home / "artifacts").exists()


def _cli_reads_what_is_stored(run_id: str, version: int, current: pd.DataFrame, tmp_path: Path) -> None:
    """`mloop drift` and `mloop validate` against stored references, run as a user runs them (a subprocess with
    the test's environment, so MLOOP_TRACKING_URI in server mode)."""
    import json
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([sys.executable, "-m", "mloop", *args], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
        assert "Traceback" not in out.stderr, out.stderr
        return out

    current.to_parquet(tmp_path / "current.parquet")
    for reference in (f"models:/eta/{version}", f"runs:/{run_id}/train"):
        out = run("drift", reference, str(tmp_path / "current.parquet"), "--json")
        assert out.returncode == 1 and json.loads(out.stdout)["drifted_columns"] == ["km"]
    _train(seed=5).to_parquet(tmp_path / "same.parquet")
    assert run("validate", str(tmp_path / "same.parquet"), "--schema", f"models:/eta/{version}").returncode == 0
    pd.DataFrame({"hour": [77], "km": [2.0], "zone": ["north"]}).to_parquet(tmp_path / "bad.parquet")
    assert run("validate", str(tmp_path / "bad.parquet"), "--schema", f"runs:/{run_id}/train").returncode == 1
    bad = run("drift", "models:/eta/latest", str(tmp_path / "current.parquet"))
    assert bad.returncode == 2 and "models:/NAME/VERSION" in bad.stderr


def test_a_registry_passed_in_takes_the_same_path_as_the_sdk(mode_settings: Settings) -> None:
    """``registry=`` names the registry to use; a server's client must go through the server's quality API (its
    client has no blob store to write into)."""
    train = _train(seed=3)
    with mloop.start_run(experiment="quality-passed") as run:
        version = run.log_model(LinearRegression().fit(train[["hour"]], train["hour"] * 2), name="eta-passed",
                                input_example=train[["hour"]].head(5))
    registry = registry_for(mode_settings)
    tagged = attach_to_model_version("eta-passed", version.version, data=train, registry=registry)
    assert {"mloop.schema", "mloop.profile"} <= set(tagged.tags)
    assert model_schema("eta-passed", version.version, registry=registry) == infer_schema(train)
    stored = model_profile("eta-passed", version.version, registry=registry)
    assert stored.to_dict() == profile(train).to_dict()
    if mode_settings.remote:
        assert not (Path(mode_settings.home) / "artifacts").exists()
