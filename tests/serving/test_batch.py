"""Batch scoring: Parquet, CSV and SQL in; Parquet and a table out; resumed per chunk after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mloop.errors import ConflictError, InvalidInputError
from mloop.registry import load_model, save_model
from mloop.serving import batch_predict
from tests.serving.conftest import MODEL, trip_frame


class Doubler:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["km"], dtype=float) * 2


class ChunkSleeper:
    """A model that takes a while per chunk, so a kill lands mid-run."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        time.sleep(0.4)
        return np.asarray(frame["km"], dtype=float) * 2


def _expected(model_dir: Path, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(load_model(model_dir).predict(frame))


def test_parquet_in_parquet_out_with_version_and_time(model_dir, tmp_path) -> None:
    frame = trip_frame(250, seed=1)
    frame.to_parquet(tmp_path / "in.parquet", row_group_size=70)
    result = batch_predict(str(model_dir), str(tmp_path / "in.parquet"), str(tmp_path / "out"), chunk_rows=100)
    assert (result.rows, result.chunks_scored, result.chunks_skipped) == (250, 3, 0)
    out = pd.read_parquet(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("part-*")) == [f"part-00000{i}.parquet" for i in range(3)]
    assert out[["hour", "km", "weather"]].equals(frame[["hour", "km", "weather"]])
    assert np.allclose(out["prediction"], _expected(model_dir, frame))
    assert set(out["model_version"]) == {result.model_version}
    assert str(out["scored_at"].dtype) == "datetime64[ms, UTC]"
    again = batch_predict(str(model_dir), str(tmp_path / "in.parquet"), str(tmp_path / "out"), chunk_rows=100)
    assert (again.rows, again.chunks_scored, again.chunks_skipped) == (0, 0, 3)
    with pytest.raises(ConflictError, match="chunks of 100"):
        batch_predict(str(model_dir), str(tmp_path / "in.parquet"), str(tmp_path / "out"), chunk_rows=50)


def test_csv_and_sql_into_a_table_from_the_registry(registry, settings, tmp_path) -> None:
    frame = trip_frame(120, seed=2)
    frame.to_csv(tmp_path / "in.csv", index=False)
    db = f"sqlite:///{tmp_path / 'app.db'}"
    result = batch_predict(f"models:/{MODEL}@champion", str(tmp_path / "in.csv"), "table:scores", db_url=db,
                           chunk_rows=50, client=registry)
    assert result.model_uri == f"models:/{MODEL}/1" and result.model_version == "1" and result.rows == 120
    engine = sa.create_engine(db)
    scores = pd.read_sql("SELECT * FROM scores", engine)
    assert len(scores) == 120 and set(scores["model_version"]) == {"1"}
    frame.to_sql("trips", engine, index=False)
    result = batch_predict(f"models:/{MODEL}/2", "SELECT hour, km, weather FROM trips ORDER BY km", str(tmp_path / "o"),
                           db_url=db, chunk_rows=40, client=registry)
    out = pd.read_parquet(tmp_path / "o")
    assert result.chunks_scored == 3 and out["km"].is_monotonic_increasing and set(out["model_version"]) == {"2"}
    engine.dispose()


def test_bad_arguments_say_what_was_expected(model_dir, tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="parquet"):
        batch_predict(str(model_dir), str(tmp_path / "x.txt"), str(tmp_path / "o"))
    with pytest.raises(InvalidInputError, match="existing Parquet"):
        batch_predict(str(model_dir), str(tmp_path / "missing.parquet"), str(tmp_path / "o"))
    with pytest.raises(InvalidInputError, match="local or ray"):
        batch_predict(str(model_dir), str(tmp_path / "x.parquet"), str(tmp_path / "o"), engine="spark")


def test_a_killed_run_resumes_where_it_stopped(tmp_path) -> None:
    folder = tmp_path / "sleeper"
    save_model(ChunkSleeper(), folder, flavor="python_function", input_example=trip_frame(3))
    frame = trip_frame(1000, seed=4).reset_index(names="trip_id")
    frame.to_parquet(tmp_path / "in.parquet")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mloop", "batch-predict", str(folder), "--input", str(tmp_path / "in.parquet"),
           "--output", str(out), "--chunk-rows", "100", "--trusted"]
    proc = subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list(out.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(out.glob("part-*.parquet")))
    assert 3 <= done_before < 10, done_before
    finished = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert f"({done_before} already done)" in finished.stdout
    result = pd.read_parquet(out)
    assert len(result) == 1000 and sorted(result["trip_id"]) == list(range(1000))
    assert np.allclose(result.sort_values("trip_id")["prediction"], frame["km"] * 2)
    assert not list(out.glob(".tmp-*"))


def test_ray_engine_scores_the_same(model_dir, tmp_path) -> None:
    ray = pytest.importorskip("ray")
    frame = trip_frame(300, seed=6)
    frame.to_parquet(tmp_path / "in.parquet")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}})
    try:
        result = batch_predict(str(model_dir), str(tmp_path / "in.parquet"), str(tmp_path / "out"), chunk_rows=100,
                               engine="ray")
        # A pickled model needs the user's trust: the workers load it with the trust the caller gave.
        save_model(Doubler(), tmp_path / "pickled", flavor="python_function")
        pickled = batch_predict(str(tmp_path / "pickled"), str(tmp_path / "in.parquet"), str(tmp_path / "out2"),
                                chunk_rows=100, engine="ray", trusted=True)
    finally:
        ray.shutdown()
    out = pd.read_parquet(tmp_path / "out")
    assert result.chunks_scored == 3 and np.allclose(out["prediction"], _expected(model_dir, frame))
    assert pickled.chunks_scored == 3
    assert np.allclose(pd.read_parquet(tmp_path / "out2")["prediction"], frame["km"] * 2)
