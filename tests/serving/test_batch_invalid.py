"""batch-predict over a Parquet file with bad rows, through the real CLI: --on-invalid fail, skip and quarantine,
their files, counts and exit codes; and --predict-output with probabilities per class."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.serving import batch_predict
from tests.serving.test_proba import CLASSES, delivery_frame, save_classifier

CHUNK = 128


@pytest.fixture(scope="module")
def scored_input(tmp_path_factory) -> tuple[Path, Path, object, pd.DataFrame, set[tuple[int, str]]]:
    """A classifier, and 1,000 deliveries to score in which some rows break its signature: hours missing or
    fractional (hour is a non-null integer), weather missing (a non-null string), and one whole chunk bad."""
    root = tmp_path_factory.mktemp("batch-invalid")
    folder, model = save_classifier(root / "model", delivery_frame(400))
    frame = delivery_frame(1000, seed=7).astype({"hour": "float64", "weather": object})
    rng = np.random.default_rng(1)
    missing_hour = rng.choice(1000, 25, replace=False)
    fractional = rng.choice(np.setdiff1d(np.arange(1000), missing_hour), 10, replace=False)
    frame.loc[missing_hour, "hour"] = np.nan
    frame.loc[fractional, "hour"] += 0.5
    no_weather = [*rng.choice(1000, 15, replace=False), *range(2 * CHUNK, 3 * CHUNK)]  # the third chunk: all bad
    frame.loc[no_weather, "weather"] = None
    frame.insert(0, "delivery_id", [f"d-{i:05d}" for i in range(1000)])
    path = root / "deliveries.parquet"
    frame.to_parquet(path)
    problems = {(int(r), "hour") for r in [*missing_hour, *fractional]} | {(int(r), "weather") for r in no_weather}
    return folder, path, model, frame, problems


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mloop", "batch-predict", *args, "--home", str(home)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})


def test_fail_stops_naming_the_rows_and_fields(scored_input, tmp_path) -> None:
    folder, path, _, _, problems = scored_input
    done = cli(str(folder), "-i", str(path), "-o", str(tmp_path / "out"), "--chunk-rows", str(CHUNK),
               home=tmp_path / "home")
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    first_chunk = sorted({r for r, _ in problems if r < CHUNK})
    assert f"{len(first_chunk)} input row(s) break the model's signature" in message
    assert f"row {first_chunk[0]}:" in message and "--on-invalid skip" in message
    assert "Traceback" not in done.stderr


def test_skip_scores_the_rest_and_writes_a_reason_per_row_beside_the_output(scored_input, tmp_path) -> None:
    folder, path, model, frame, problems = scored_input
    out = tmp_path / "out"
    done = cli(str(folder), "-i", str(path), "-o", str(out), "--chunk-rows", str(CHUNK), "--on-invalid", "skip",
               "--predict-output", "both", home=tmp_path / "home")
    bad_rows = {r for r, _ in problems}
    assert done.returncode == 3, done.stderr
    assert f"{len(bad_rows)} invalid rows skipped" in " ".join(done.stderr.split())
    assert f"scored {1000 - len(bad_rows):,} rows" in done.stdout

    rejects = pd.read_parquet(Path(f"{out}.rejects"))
    assert set(zip(rejects["row"], rejects["field"], strict=True)) == problems
    assert set(rejects.columns) == {"row", "field", "expected", "value", "reason"}
    hour = rejects[rejects["field"] == "hour"].iloc[0]
    assert hour["expected"] == "integer" and "'hour' is" in hour["reason"]

    scored = pd.read_parquet(out).set_index("delivery_id")
    valid = frame.drop(index=sorted(bad_rows)).set_index("delivery_id")
    assert sorted(scored.index) == sorted(valid.index)
    scored = scored.loc[valid.index]
    inputs = valid.astype({"hour": "int64"})
    assert scored["prediction"].tolist() == model.predict(inputs).tolist()
    np.testing.assert_allclose(scored[[f"proba_{c}" for c in CLASSES]].to_numpy(), model.predict_proba(inputs),
                               atol=1e-12)


def test_quarantine_writes_the_bad_rows_as_they_came_with_their_reasons(scored_input, tmp_path) -> None:
    folder, path, _, frame, problems = scored_input
    out = tmp_path / "out"
    args = [str(folder), "-i", str(path), "-o", str(out), "--chunk-rows", str(CHUNK), "--on-invalid", "quarantine"]
    done = cli(*args, home=tmp_path / "home")
    bad_rows = sorted({r for r, _ in problems})
    assert done.returncode == 3, done.stderr
    assert f"{len(bad_rows)} invalid rows quarantined" in " ".join(done.stderr.split())
    quarantined = pd.read_parquet(Path(f"{out}.quarantine")).sort_values("_row")
    assert quarantined["_row"].tolist() == bad_rows
    assert quarantined["delivery_id"].tolist() == frame.loc[bad_rows, "delivery_id"].tolist()
    pd.testing.assert_series_equal(quarantined["hour"].reset_index(drop=True),
                                   frame.loc[bad_rows, "hour"].reset_index(drop=True))
    both = [r for r in bad_rows if {(r, "hour"), (r, "weather")} <= problems]
    for _, row in quarantined[quarantined["_row"].isin(both)].iterrows():
        assert "'hour'" in row["_reason"] and "'weather'" in row["_reason"]
    assert len(pd.read_parquet(out)) == 1000 - len(bad_rows)
    # a run again resumes to nothing (every chunk is done) and still says rows were rejected in that output
    again = cli(*args, home=tmp_path / "home")
    assert again.returncode == 3 and "scored 0 rows" in again.stdout, again.stderr
    assert f"{len(bad_rows)} invalid rows quarantined" in " ".join(again.stderr.split())
    changed = cli(*[a if a != "quarantine" else "skip" for a in args], home=tmp_path / "home")
    assert changed.returncode == 1 and "--restart" in changed.stderr  # a conflict with the run there


def test_a_clean_input_exits_zero_and_probabilities_need_a_classifier(scored_input, model_dir, tmp_path) -> None:
    folder, path, model, frame, problems = scored_input
    clean = tmp_path / "clean.parquet"
    frame.drop(index=sorted({r for r, _ in problems})).to_parquet(clean)
    done = cli(str(folder), "-i", str(clean), "-o", str(tmp_path / "out"), "--on-invalid", "skip",
               "--predict-output", "proba", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert not Path(f"{tmp_path / 'out'}.rejects").exists()
    scored = pd.read_parquet(tmp_path / "out")
    assert "prediction" not in scored and [c for c in scored if c.startswith("proba_")] == \
        [f"proba_{c}" for c in CLASSES]
    regressor = cli(str(model_dir), "-i", str(clean), "-o", str(tmp_path / "out2"), "--predict-output", "proba",
                    home=tmp_path / "home")
    assert regressor.returncode == 2 and "predict_proba" in regressor.stderr


def test_table_output_keeps_rejects_in_a_side_table(scored_input, tmp_path) -> None:
    import sqlalchemy as sa

    folder, path, _, _, problems = scored_input
    db = f"sqlite:///{tmp_path / 'scores.db'}"
    result = batch_predict(str(folder), str(path), "table:scores", db_url=db, chunk_rows=CHUNK, on_invalid="skip")
    assert result.rows_rejected == len({r for r, _ in problems}) and result.rejects == "scores__rejects"
    resumed = batch_predict(str(folder), str(path), "table:scores", db_url=db, chunk_rows=CHUNK, on_invalid="skip")
    assert (resumed.rows, resumed.rows_rejected) == (0, result.rows_rejected)
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM scores")).scalar() == result.rows
        assert conn.execute(sa.text("SELECT count(*) FROM scores__rejects")).scalar() == len(problems)
    engine.dispose()
