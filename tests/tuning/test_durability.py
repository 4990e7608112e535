"""A study survives kill -9 of its process and is shared by workers, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mloop
from mloop.tuning import load_study
from tests.tuning.conftest import SPACE

RUN_STUDY = """
import sys, mloop
from objectives import quadratic
mloop.tune(quadratic, dict(x=("float", -10.0, 10.0), kind=["a", "b"], sleep=0.03), n_trials=50, study="crash")
"""


def _trial_runs(study: Any) -> Any:
    frame = mloop.search_runs(study.name)
    return frame[frame["parent_run_id"] == study.run_id]


def _wait_for_complete(study_name: str, at_least: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "the study process ended"
        try:
            if (load_study(study_name).trials_frame()["state"] == "complete").sum() >= at_least:
                return
        except mloop.MloopError:  # the study does not exist yet
            pass
        time.sleep(0.1)
    raise AssertionError("the study made no progress")


def test_a_study_killed_mid_way_resumes_with_no_trial_lost_or_repeated(db_url: str, tmp_path: Path,
                                                                       objectives: Any) -> None:
    env = dict(os.environ, MLOOP_DB_URL=db_url, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ["PYTHONPATH"]]))
    mloop.configure(db_url=db_url)
    proc = subprocess.Popen([sys.executable, "-c", RUN_STUDY], env=env, stderr=subprocess.PIPE)
    try:
        _wait_for_complete("crash", 15, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    interrupted = load_study("crash").trials_frame()
    assert 15 <= (interrupted["state"] == "complete").sum() < 50  # killed mid-way, a trial most likely running

    study = mloop.tune(objectives.quadratic, dict(SPACE, sleep=0.0), n_trials=50, study="crash")

    frame = study.trials_frame()
    finished = frame[frame["state"].isin(["complete", "pruned"])]
    assert len(finished) == 50
    assert frame["number"].is_unique and list(frame["number"]) == list(range(len(frame)))
    assert (frame["state"] == "running").sum() == 0
    # the trial the kill interrupted (if any) failed; none was run twice, every trial has its own run
    assert len(frame) - len(finished) == (frame["state"] == "fail").sum() <= 1
    runs = _trial_runs(study)  # a trial killed before its run started has none
    assert runs["run_id"].is_unique and set(runs["run_id"]) == set(frame["run_id"].dropna())
    assert finished["run_id"].notna().all() and (runs["status"] == "finished").sum() == 50
    assert set(runs.loc[runs["status"] != "finished", "tags.mloop.tune.state"]) <= {"abandoned"}


def test_two_worker_processes_share_one_study(db_url: str, objectives: Any) -> None:
    mloop.configure(db_url=db_url)
    study = mloop.tune(objectives.quadratic, dict(SPACE, sleep=0.15), n_trials=16, parallel=2, study="shared")

    frame = study.trials_frame()
    assert len(frame) == 16 and (frame["state"] == "complete").all()
    assert list(frame["number"]) == list(range(16))
    workers = {mloop.get_run(r).tags["mloop.pid"] for r in frame["run_id"]}
    assert len(workers) == 2 and str(os.getpid()) not in workers  # both processes ran trials, not this one
    assert len(_trial_runs(study)) == 16
    assert study.best_value < 5
