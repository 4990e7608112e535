"""The journal under Optuna: dense positions under concurrent writers, its own table, trials of lost workers."""

from __future__ import annotations

import multiprocessing
from typing import Any

import optuna

import mloop
from mloop.store.sql import open_database
from mloop.tracking.entities import RunStatus
from mloop.tuning.journal import append_entries, open_storage, read_entries, worker_id
from mloop.tuning.study import RUN_ID, WORKER
from tests.tuning.conftest import SPACE


def _append_many(url: str, writer: int) -> None:
    db = open_database(url)
    for i in range(25):
        append_entries(db, [{"writer": writer, "i": i}] if i % 2 else [{"writer": writer, "i": i, "pair": 0},
                                                                        {"writer": writer, "i": i, "pair": 1}])


def test_concurrent_appends_get_dense_positions_in_order(db_url: str) -> None:
    ctx = multiprocessing.get_context("fork")  # no fresh interpreter to start: the writers race at once
    procs = [ctx.Process(target=_append_many, args=(db_url, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    db = open_database(db_url)
    entries = list(read_entries(db, 0))
    assert len(entries) == 3 * (13 * 2 + 12)
    for writer in range(3):  # each writer's entries in its order, a pair never split
        mine = [(e["i"], e.get("pair")) for e in entries if e["writer"] == writer]
        assert [i for i, _ in mine] == sorted(i for i, _ in mine)
    pairs = [n for n, e in enumerate(entries) if e.get("pair") == 0]
    assert all(entries[n + 1].get("pair") == 1 and entries[n + 1]["writer"] == entries[n]["writer"] for n in pairs)
    assert [e["i"] for e in read_entries(db, len(entries) - 1)] == [entries[-1]["i"]]
    with db.read() as conn:  # Optuna's tables and second alembic_version are nowhere: one journal table
        versions = {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    assert "tuning_0001" in versions


def test_trials_of_lost_workers_return_to_the_budget(objectives: Any) -> None:
    mloop.tune(objectives.quadratic, SPACE, n_trials=2, study="lost")
    db = open_database(mloop.client().settings.db_url)
    study = optuna.load_study(study_name="lost", storage=open_storage(db))
    trial = study.ask()  # a worker on another machine started it, then its machine went away
    with mloop.start_run("lost", "trial-2") as run:
        pass
    mloop.client().repo.end_run(run.run_id, RunStatus.KILLED)  # what the heartbeat reaper does
    study._storage.set_trial_system_attr(trial._trial_id, WORKER, "elsewhere:1")
    study._storage.set_trial_system_attr(trial._trial_id, RUN_ID, run.run_id)

    study.ask()  # a worker killed mid-claim, between starting the trial and naming itself on it
    interrupted = study.ask()  # this very process, interrupted (Ctrl-C) mid-claim, its run left running
    lost_run = mloop.get_run(run.run_id)
    left_open = mloop.client().repo.create_run(lost_run.experiment_id, "trial-4", "", {}, lost_run.parent_run_id, "")
    study._storage.set_trial_system_attr(interrupted._trial_id, WORKER, worker_id())
    study._storage.set_trial_system_attr(interrupted._trial_id, RUN_ID, left_open.run_id)

    frame = mloop.tune(objectives.quadratic, SPACE, n_trials=4, study="lost").trials_frame()
    assert list(frame["state"]) == ["complete", "complete", "fail", "fail", "fail", "complete", "complete"]
    assert mloop.get_run(left_open.run_id).status == "killed"
    assert mloop.get_run(run.run_id).tags["mloop.tune.state"] == "abandoned"
