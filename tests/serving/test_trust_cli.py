"""``mloop serve`` and ``mloop batch-predict`` trust a model's extra types by name (``--trust``), as
``load_model(trusted=[...])`` does, without trusting the whole file (``--trusted``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mloop.registry import save_model
from mloop.serving import ServeConfig
from tests.serving.conftest import ROW, serve_process, trip_frame


@pytest.fixture
def clipped(tmp_path: Path) -> Path:
    """A model whose file names numpy.clip: not on mloop's list, harmless, so a user may trust it by name."""
    frame = trip_frame(200)[["hour", "km"]]
    model = Pipeline([("clip", FunctionTransformer(np.clip, kw_args={"a_min": 0, "a_max": 20})),
                      ("ridge", Ridge())]).fit(frame, frame["km"] * 2)
    save_model(model, tmp_path / "clipped", input_example=frame.head())
    return tmp_path / "clipped"


def _batch(model: Path, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "in.parquet"
    trip_frame(50)[["hour", "km"]].to_parquet(source)
    return subprocess.run([sys.executable, "-m", "mloop", "batch-predict", str(model), "-i", str(source),
                           "-o", str(tmp_path / f"out{len(flags)}"), *flags], capture_output=True, text=True,
                          timeout=180)


def test_batch_predict_trusts_a_name_it_is_given(clipped: Path, tmp_path: Path) -> None:
    refused = _batch(clipped, tmp_path)
    assert refused.returncode != 0 and "numpy.clip" in refused.stderr and "Traceback" not in refused.stderr
    scored = _batch(clipped, tmp_path, "--trust", "numpy.clip")
    assert scored.returncode == 0, scored.stderr
    assert "scored 50 rows" in scored.stdout


def test_serve_trusts_a_name_it_is_given(clipped: Path) -> None:
    with serve_process([str(clipped), "--name", "clipped", "--trust", "numpy.clip"]) as (url, _):
        answer = httpx.post(f"{url}/predict", json=[{"hour": ROW["hour"], "km": ROW["km"]}], timeout=30)
        assert answer.status_code == 200, answer.text


def test_serve_config_keeps_trusted_names_through_json() -> None:
    from mloop.serving import EndpointConfig

    config = ServeConfig(endpoints=(EndpointConfig(name="m", uri="models:/m/1"),), trusted=["numpy.clip"])
    assert config.trusted == ("numpy.clip",)
    assert ServeConfig.from_json(config.to_json()).trusted == ("numpy.clip",)
