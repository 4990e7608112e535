"""The CLI as a user runs it (real processes, exit codes for CI), and schemas/profiles attached to runs and models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.validation import attach_to_model_version, infer_schema, model_profile, model_schema, validate
from mloop.validation.drift_detection.report import plotly_js


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400"}  # messages on one line
    return subprocess.run([sys.executable, "-m", "mloop", *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    n = 3000
    train = pd.DataFrame({"hour": rng.integers(0, 24, n), "fare": rng.gamma(2, 3, n),
                          "weather": rng.choice(["clear", "rain"], n)})
    same = pd.DataFrame({"hour": rng.integers(0, 24, n), "fare": rng.gamma(2, 3, n),
                         "weather": rng.choice(["clear", "rain"], n)})
    shifted = same.assign(fare=same["fare"] * 1.5)
    bad = same.head(100).assign(hour=lambda f: f["hour"].where(f.index != 4, 77)).drop(columns=["weather"])
    out = {}
    for name, frame in (("train", train), ("same", same), ("shifted", shifted), ("bad", bad)):
        frame.to_parquet(tmp_path / f"{name}.parquet")
        out[name] = tmp_path / f"{name}.parquet"
    return out


def test_validate_exit_codes_and_messages(files: dict[str, Path], tmp_path: Path) -> None:
    schema = tmp_path / "schema.yaml"
    assert cli("infer-schema", str(files["train"]), "-o", str(schema)).returncode == 0
    schema_data = infer_schema(files["train"]).to_dict()
    schema_data["columns"]["fare"].pop("max")  # hand-edited: fares may grow
    schema_data["columns"]["fare"].pop("min")
    (tmp_path / "edited.json").write_text(json.dumps(schema_data))
    ok = cli("validate", str(files["same"]), "--schema", str(tmp_path / "edited.json"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = cli("validate", str(files["bad"]), "--schema", str(schema), "--json")
    assert bad.returncode == 1
    result = json.loads(bad.stdout)
    messages = [v["message"] for v in result["violations"]]
    assert any(m.startswith("hour: 1 of 100 rows (1.0%) outside the range [0, 23]; e.g. row 4: 77") for m in messages)
    assert any("weather: column is missing" in m for m in messages)
    usage = cli("validate", str(files["bad"]))
    assert usage.returncode == 2 and "infer-schema" in usage.stderr
    missing = cli("validate", str(tmp_path / "nope.parquet"), "--schema", str(schema))
    assert missing.returncode == 2 and "nope.parquet" in missing.stderr and "Traceback" not in missing.stderr


def test_drift_exit_codes_html_json_and_profiles(files: dict[str, Path], tmp_path: Path) -> None:
    quiet = cli("drift", str(files["train"]), str(files["same"]))
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    html = tmp_path / "out.html"
    loud = cli("drift", str(files["train"]), str(files["shifted"]), "--html", str(html), "--json")
    assert loud.returncode == 1
    result = json.loads(loud.stdout)
    assert result["drifted_columns"] == ["fare"] and result["version"] == 1
    assert html.stat().st_size < len(plotly_js()) + 500_000 and "Plotly.newPlot" in html.read_text()
    assert cli("drift", str(files["train"]), str(files["shifted"]), "--fail-on", "dataset").returncode == 0
    ref_profile = tmp_path / "ref.json"
    assert cli("profile", str(files["train"]), "-o", str(ref_profile)).returncode == 0
    from_profile = cli("drift", str(ref_profile), str(files["shifted"]), "--json")
    assert from_profile.returncode == 1 and json.loads(from_profile.stdout)["drifted_columns"] == ["fare"]
    assert cli("drift", str(files["train"])).returncode == 2
    bogus = cli("drift", str(files["train"]), str(files["same"]), "--method", "fare=bogus")
    assert bogus.returncode == 2 and "bogus" in bogus.stderr


def test_schema_and_profile_attach_to_run_datasets_and_model_versions(db_url: str, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from mloop._sdk import ActiveRun
    from mloop.registry import registry_for
    from mloop.tracking import TrackingClient
    from mloop.validation.attach import load_run_profile, load_run_schema, log_dataset

    settings = Settings.load(home=str(tmp_path / "h"), db_url=db_url)
    tracking = TrackingClient(settings)
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"hour": rng.integers(0, 24, 200), "km": rng.uniform(1, 9, 200)})
    with tracking.start_run("attach", run_class=ActiveRun) as run:
        schema, prof = log_dataset(run, train, name="trips-train")
        assert run.log_schema(schema, "again") == schema
        version = run.log_model(LinearRegression().fit(train[["hour"]], train["km"]), name="eta",
                                input_example=train[["hour"]].head(2))
    assert load_run_schema(tracking, run.run_id, "trips-train") == schema
    assert load_run_profile(tracking, run.run_id, "trips-train").rows == 200
    registry = registry_for(settings)
    with pytest.raises(NotFoundError, match="attach_to_model_version"):
        model_schema("eta", version.version, registry)
    tagged = attach_to_model_version("eta", version.version, data=train, registry=registry)
    assert set(tagged.tags) >= {"mloop.schema", "mloop.profile"}
    stored = model_schema("eta", version.version, registry)
    assert stored == schema
    assert not validate(pd.DataFrame({"hour": [77], "km": [2.0]}), stored).passed  # what serving will do
    assert model_profile("eta", version.version, registry).rows == 200
    # the model's outputs on the same rows join the profile (prediction drift), never the input schema
    predicted = np.linspace(1.0, 9.0, len(train))
    attach_to_model_version("eta", version.version, data=train, predictions=predicted, registry=registry)
    assert model_profile("eta", version.version, registry)["(prediction)"].mean == pytest.approx(predicted.mean())
    assert model_schema("eta", version.version, registry) == schema
    with pytest.raises(InvalidInputError, match="one prediction per row of data") as refused:
        attach_to_model_version("eta", version.version, data=train, predictions=predicted[:5], registry=registry)
    assert refused.value.field == "predictions"
    with pytest.raises(InvalidInputError, match="data beside the predictions"):
        attach_to_model_version("eta", version.version, predictions=predicted, registry=registry)
