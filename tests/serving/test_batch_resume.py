"""A batch run resumes only over the input it started with: a changed input is refused, never mixed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from mloop.errors import ConflictError
from mloop.serving import batch_predict
from tests.serving.conftest import trip_frame


def _input_folder(root: Path, *names: str) -> Path:
    folder = root / "in"
    folder.mkdir()
    for i, name in enumerate(names):
        trip_frame(100, seed=i).assign(trip_id=range(i * 100, (i + 1) * 100)).to_parquet(folder / name)
    return folder


def _crash_after(out: Path, chunks_kept: int) -> None:
    """The state a kill leaves: the first chunks written, the rest never."""
    for part in sorted(out.glob("part-*.parquet"))[chunks_kept:]:
        part.unlink()


def test_a_file_added_before_resume_is_refused_then_restart_scores_each_row_once(model_dir, tmp_path) -> None:
    folder = _input_folder(tmp_path, "b.parquet", "c.parquet")
    out = tmp_path / "out"
    batch_predict(str(model_dir), str(folder), str(out), chunk_rows=50)
    _crash_after(out, 2)
    trip_frame(100, seed=9).assign(trip_id=range(900, 1000)).to_parquet(folder / "a.parquet")  # sorts first
    with pytest.raises(ConflictError, match="added a.parquet") as caught:
        batch_predict(str(model_dir), str(folder), str(out), chunk_rows=50)
    assert caught.value.field == "input" and "restart" in caught.value.message
    assert len(list(out.glob("part-*.parquet"))) == 2  # nothing mixed in
    result = batch_predict(str(model_dir), str(folder), str(out), chunk_rows=50, restart=True)
    assert (result.rows, result.chunks_skipped) == (300, 0)
    scored = pd.read_parquet(out)
    assert sorted(scored["trip_id"]) == [*range(200), *range(900, 1000)]


def test_removed_resized_and_rewritten_files_are_named(model_dir, tmp_path) -> None:
    folder = _input_folder(tmp_path, "a.parquet", "b.parquet", "c.parquet")
    original = {name: (folder / name).read_bytes() for name in ("b.parquet", "c.parquet")}
    out = tmp_path / "out"
    batch_predict(str(model_dir), str(folder), str(out), chunk_rows=100)
    _crash_after(out, 1)
    (folder / "c.parquet").unlink()
    trip_frame(150, seed=5).to_parquet(folder / "b.parquet")
    with pytest.raises(ConflictError, match=r"removed c.parquet; changed b.parquet \(4,\d+ -> \d,\d+ bytes\)"):
        batch_predict(str(model_dir), str(folder), str(out), chunk_rows=100)
    for name, data in original.items():  # the same bytes, written again later: not provably the same rows
        (folder / name).write_bytes(data)
    stat = (folder / "b.parquet").stat()
    os.utime(folder / "b.parquet", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    with pytest.raises(ConflictError, match="rewrote b.parquet"):
        batch_predict(str(model_dir), str(folder), str(out), chunk_rows=100)


def test_an_unchanged_input_still_resumes(model_dir, tmp_path) -> None:
    folder = _input_folder(tmp_path, "a.parquet", "b.parquet")
    out = tmp_path / "out"
    batch_predict(str(model_dir), str(folder), str(out), chunk_rows=40)
    _crash_after(out, 2)
    result = batch_predict(str(model_dir), str(folder), str(out), chunk_rows=40)
    assert (result.chunks_skipped, result.rows) == (2, 120)
    assert sorted(pd.read_parquet(out)["trip_id"]) == list(range(200))


def test_a_changed_csv_is_refused_and_a_table_it_created_restarts(model_dir, tmp_path) -> None:
    source = tmp_path / "in.csv"
    trip_frame(120, seed=1).assign(trip_id=range(120)).to_csv(source, index=False)
    db = f"sqlite:///{tmp_path / 'app.db'}"
    batch_predict(str(model_dir), str(source), "table:scores", db_url=db, chunk_rows=50)
    trip_frame(130, seed=1).assign(trip_id=range(130)).to_csv(source, index=False)
    with pytest.raises(ConflictError, match="changed in.csv"):
        batch_predict(str(model_dir), str(source), "table:scores", db_url=db, chunk_rows=50)
    batch_predict(str(model_dir), str(source), "table:scores", db_url=db, chunk_rows=50, restart=True)
    engine = sa.create_engine(db)
    assert sorted(pd.read_sql("SELECT trip_id FROM scores", engine)["trip_id"]) == list(range(130))
    engine.dispose()


def test_restart_refuses_a_table_that_held_rows_before(model_dir, tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'app.db'}"
    engine = sa.create_engine(db)
    earlier = trip_frame(5).assign(trip_id=range(5), prediction=0.0, model_version="0", scored_at=pd.Timestamp(0))
    earlier.to_sql("scores", engine, index=False)
    engine.dispose()
    source = tmp_path / "in.csv"
    trip_frame(20).assign(trip_id=range(20)).to_csv(source, index=False)
    batch_predict(str(model_dir), str(source), "table:scores", db_url=db, chunk_rows=50)
    with pytest.raises(ConflictError, match="new table"):
        batch_predict(str(model_dir), str(source), "table:scores", db_url=db, chunk_rows=50, restart=True)


def test_cli_names_the_change_and_offers_restart(model_dir, tmp_path) -> None:
    folder = _input_folder(tmp_path, "b.parquet")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mloop", "batch-predict", str(model_dir), "--input", str(folder),
           "--output", str(out), "--chunk-rows", "50"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    _crash_after(out, 1)
    trip_frame(10).assign(trip_id=range(10)).to_parquet(folder / "a.parquet")
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    said = " ".join((refused.stdout + refused.stderr).split())
    assert "added a.parquet" in said and "--restart" in said and "Traceback" not in said
    again = subprocess.run([*cmd, "--restart"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert len(pd.read_parquet(out)) == 110
