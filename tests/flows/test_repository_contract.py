"""The flow repository's contract, run on both implementations (``mode_settings``): the metadata database
directly, and ``mloop server`` over HTTP. Every read answers the same rows for the same writes."""

from __future__ import annotations

import uuid

import pytest

from mloop.errors import InvalidInputError, NotFoundError
from mloop.flows.artifacts import ArtifactRef
from mloop.flows.repository import open_flow_repo

SHA = "ab" * 32


def test_runs_tasks_artifacts_tags_and_schedules_read_back_as_written(mode_settings) -> None:
    repo = open_flow_repo(mode_settings)
    experiment = repo.experiment_id("Contract")
    assert repo.experiment_id("Contract") == experiment  # found, not made twice
    run_id = repo.create_run(experiment_id=experiment, flow_name="Contract", file="/flows/contract.py",
                             params={"alpha": 0.5, "names": ["a", "b"]}, tags=["nightly"],
                             run_tags={"mloop.flow": "Contract"}, origin=None, executor="local", user="ann")
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    start = {"run_id": run_id, "experiment_id": experiment, "inputs": ["<params>"], "log_dir": None, "user": "ann"}
    repo.record([("start_task", {**start, "task_id": first, "step": "start", "path": "start", "cache_key": SHA,
                                 "now": 1_000}),
                 ("finish_task", {"task_id": first, "status": "finished", "now": 1_500,
                                  "transition": {"steps": ["end"], "foreach": None, "condition": None},
                                  "artifacts": {"rows": ArtifactRef(SHA, "pickle", 12)}, "stdout_sha": SHA}),
                 ("start_task", {**start, "task_id": second, "step": "end", "path": "end", "cache_key": None,
                                 "inputs": [first], "now": 2_000}),
                 ("set_attempt", {"task_id": second, "attempt": 1})])
    repo.heartbeat([run_id, second])
    run = repo.get_run(run_id[:8])
    assert (run.run_id, run.flow_name, run.status, run.params, run.tags) == (
        run_id, "Contract", "running", {"alpha": 0.5, "names": ["a", "b"]}, ["nightly"])
    tasks = repo.tasks(run_id)
    assert [(t.path, t.status, t.attempt, t.inputs) for t in tasks] == [
        ("start", "finished", 0, ["<params>"]), ("end", "running", 1, [first])]
    assert tasks[0].transition == {"steps": ["end"], "foreach": None, "condition": None}
    assert (tasks[0].started, tasks[0].ended, tasks[0].stdout_sha) == (1_000, 1_500, SHA)
    assert repo.get_task(second) == tasks[1]
    assert repo.cached_task(SHA) == tasks[0]
    assert repo.cached_task("cd" * 32) is None
    assert repo.artifacts([first, second]) == {first: {"rows": ArtifactRef(SHA, "pickle", 12)}, second: {}}

    repo.add_tags(run_id, ["prod", "nightly"])
    repo.remove_tags(run_id, ["nightly"])
    repo.end_run(run_id, "finished")
    assert repo.get_run(run_id).tags == ["prod"] and repo.get_run(run_id).status == "finished"
    assert [r.run_id for r in repo.list_runs("Contract", tag="prod", status="finished", limit=5)] == [run_id]
    assert repo.list_runs("Contract", status="failed") == [] and "Contract" in repo.flow_names()

    assert repo.claim_schedule_start("Contract", 60_000, "* * * * *", "/flows/contract.py") is True
    assert repo.claim_schedule_start("Contract", 60_000, "* * * * *", "/flows/contract.py") is False
    repo.set_schedule_run("Contract", 60_000, run_id)
    starts = repo.schedule_starts("Contract")
    assert [(s["due"], s["run_id"], s["cron"]) for s in starts] == [(60_000, run_id, "* * * * *")]


def test_missing_and_malformed_input_is_refused_alike(mode_settings) -> None:
    repo = open_flow_repo(mode_settings)
    with pytest.raises(NotFoundError, match="No flow run"):
        repo.get_run(uuid.uuid4().hex)
    with pytest.raises(NotFoundError, match="No flow task"):
        repo.get_task(uuid.uuid4().hex)
    with pytest.raises(InvalidInputError) as refused:
        repo.list_runs(status="sleeping")
    assert refused.value.field == "status"
