"""Batch scoring outputs are monitored the way online traffic is: rows in the log with role batch, labels joined."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from mloop.monitoring import create_monitor, run_monitor, series
from mloop.registry import registry_for
from mloop.serving import batch_predict
from mloop.serving.predlog import PredictionLog
from tests.monitoring.test_monitor import model_version, trips  # noqa: F401  (fixture)


def test_a_batch_run_logs_its_rows_and_a_monitor_sees_their_drift_and_labels(settings, model_version,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    data = trips(4000, rng, km_shift=8.0)  # a drifted month, scored in one batch
    data.assign(zone=data["zone"].astype("category")).to_parquet(tmp_path / "month.parquet")
    result = batch_predict("models:/eta/1", str(tmp_path / "month.parquet"), str(tmp_path / "scored"),
                           chunk_rows=1500, predict_output="both", log_predictions=True, settings=settings,
                           client=registry_for(settings))
    scored = pd.read_parquet(tmp_path / "scored")
    assert result.rows == 4000 and scored["prediction_id"].is_unique

    # labels come back later for the scored rows, by the ids the output carries
    log = PredictionLog(settings)
    log.feedback(list(zip(scored["prediction_id"], scored["prediction"].astype(int), strict=True)))
    log.close()
    create_monitor("eta-batch", "eta", window="1h", settings=settings)
    report = run_monitor("eta-batch", now=datetime.now(UTC) + timedelta(hours=2), settings=settings)
    assert report.rows == 4000
    rows = series("eta-batch", "rows", role="batch", settings=settings)["value"].sum()
    requests = series("eta-batch", "requests", role="batch", settings=settings)["value"].sum()
    assert rows == 4000 and requests == 3  # a chunk is one request of many rows
    assert (series("eta-batch", "drifted", column="km", role="batch", settings=settings)["value"] == 1).all()
    accuracy = series("eta-batch", "accuracy", role="batch", settings=settings)
    assert not accuracy.empty and (accuracy["value"] == 1.0).all()  # labelled with its own answers

    out = subprocess.run([sys.executable, "-m", "mloop", "batch-predict", "models:/eta/1", "--input",
                          str(tmp_path / "month.parquet"), "--output", str(tmp_path / "cli"), "--log-predictions",
                          "--home", settings.home], capture_output=True, text=True, timeout=180,
                         env={**__import__("os").environ, "MLOOP_DB_URL": settings.db_url})
    assert out.returncode == 0, out.stderr
    assert "prediction_id" in pd.read_parquet(tmp_path / "cli").columns
