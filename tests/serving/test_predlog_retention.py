"""Prediction log retention: ``mloop gc`` deletes the days past ``prediction_log_retention_days``, nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.serving.predlog import PredictionLog, purge_predictions, read_predictions


def _log_today(settings: Settings) -> None:
    log = PredictionLog(settings)
    for i in range(40):
        columns = {"zone": ["north" if i % 3 else None, "south"], "km": [None if i % 10 == 0 else 2.5 + i, 7.0],
                   "at": ["2024-03-31T01:30:00+01:00", "2024-03-31T03:30:00+02:00"]}  # across the DST change
        log.record("eta", "3", "primary", f"r{i}", columns, [7.5 + i, 9.0], 0.002, 2)
    log.feedback([(f"r{i}-0", 8.0 + i) for i in range(0, 40, 4)])
    log.close()
    assert log.errors == 0


def _age_copy(settings: Settings, days_ago: int) -> list[Path]:
    """A copy of today's log folders dated ``days_ago`` days back (as the writer would have named them then)."""
    root = Path(settings.artifact_root) / "predictions"
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    old = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%d")
    copies = []
    for parent in ("eta", "_feedback"):
        shutil.copytree(root / parent / today, root / parent / old)
        copies.append(root / parent / old)
    return copies


def test_gc_deletes_prediction_days_past_the_retention_and_keeps_the_rest(tmp_path: Path) -> None:
    settings = Settings.load(home=str(tmp_path / "home"), prediction_log_retention_days=30)
    _log_today(settings)
    expired = _age_copy(settings, 45)
    recent = _age_copy(settings, 20)
    (Path(settings.artifact_root) / "predictions" / "eta" / "notes").mkdir()  # not a day: never touched
    assert len(read_predictions(settings, "eta")) == 3 * 80

    result = purge_predictions(settings)
    assert result["days"] == 2 and result["files"] == sum(len(list(p.iterdir())) for p in recent)
    assert not any(p.exists() for p in expired) and all(p.is_dir() for p in recent)
    assert (Path(settings.artifact_root) / "predictions" / "eta" / "notes").is_dir()
    frame = read_predictions(settings, "eta")
    assert len(frame) == 2 * 80 and frame["label"].notna().sum() == 2 * 10  # labels of kept days still join
    assert purge_predictions(settings) == {"days": 0, "files": 0}

    # a day goes only once all of it is past the cutoff: at 19 days' retention the 20-day-old day goes
    assert purge_predictions(settings, retention_days=19)["days"] == 2
    assert purge_predictions(settings, retention_days=0) == {"days": 0, "files": 0}  # 0 keeps everything
    assert len(read_predictions(settings, "eta")) == 80
    with pytest.raises(InvalidInputError, match="retention_days"):
        purge_predictions(settings, retention_days=-1)


def test_mloop_gc_applies_the_setting_from_the_environment(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.load(home=str(home))
    assert settings.prediction_log_retention_days == 90
    _log_today(settings)
    expired = _age_copy(settings, 120)
    kept = _age_copy(settings, 60)
    env = {**os.environ, "MLOOP_HOME": str(home), "MLOOP_PREDICTION_LOG_RETENTION_DAYS": "90"}
    out = subprocess.run([sys.executable, "-m", "mloop", "gc"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "prediction log: deleted 2 days" in out.stdout and "older than 90 days" in out.stdout
    assert not any(p.exists() for p in expired) and all(p.is_dir() for p in kept)

    env["MLOOP_PREDICTION_LOG_RETENTION_DAYS"] = "soon"
    bad = subprocess.run([sys.executable, "-m", "mloop", "gc"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "prediction_log_retention_days" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def test_a_retention_too_long_to_be_a_date_is_a_clear_error_not_an_overflow(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = subprocess.run([sys.executable, "-m", "mloop", "gc", "--home", str(home),
                          "--prediction-log-retention-days", "800000"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "Traceback" not in out.stdout + out.stderr, out.stderr
    assert "retention_days" in out.stdout + out.stderr and "100,000" in out.stdout + out.stderr
    with pytest.raises(InvalidInputError, match="prediction_log_retention_days"):
        Settings.load(home=str(home), prediction_log_retention_days=1e7)
