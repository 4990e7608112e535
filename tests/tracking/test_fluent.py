"""The module-level API (``mloop.log_metric`` and friends) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mloop
from mloop.errors import ConflictError, MloopError
from mloop.tracking import RunStatus, TrackingClient


@pytest.fixture(params=["sqlite", "postgres"])
def sdk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TrackingClient]:
    settings = {"home": str(tmp_path / "h")}
    if request.param == "postgres":
        settings["db_url"] = request.getfixturevalue("postgres_url")
    yield mloop.configure(**settings)
    while mloop.active_run() is not None:
        mloop.end_run()


def test_the_fluent_api_logs_to_the_active_run(sdk: TrackingClient, tmp_path: Path) -> None:
    assert mloop.set_experiment("churn").name == "churn"
    outer = mloop.start_run(name="outer")
    inner = mloop.start_run(name="inner")  # nested: the innermost run is the active one
    assert mloop.active_run() is inner and inner.info.parent_run_id == outer.run_id
    assert mloop.log_param("depth", 4) == 4
    mloop.log_params({"lr": 0.1, "optimizer": "adam"})
    mloop.set_tag("team", "maps")
    mloop.set_tags({"stage": "dev", "owner": "ana"})
    for step in range(5):
        mloop.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_700_000_000_000 + step)
    mloop.log_metrics({"acc": 0.9, "f1": 0.8}, step=5)
    (tmp_path / "notes.txt").write_text("hello")
    mloop.log_artifact(tmp_path / "notes.txt")
    mloop.log_text("text", "a/b.txt")
    mloop.log_dict({"k": 1}, "conf.json")
    mloop.end_run()
    assert mloop.active_run() is outer
    mloop.end_run(RunStatus.FAILED)
    assert mloop.active_run() is None
    mloop.end_run()  # nothing active: nothing to do
    last = mloop.last_active_run()
    assert last is not None and last.run_id == outer.run_id and last.status is RunStatus.FAILED
    stored = mloop.get_run(inner.run_id)
    assert stored.experiment_id == outer.experiment_id == sdk.get_experiment("churn").experiment_id
    assert stored.params == {"depth": 4, "lr": 0.1, "optimizer": "adam"} and stored.status is RunStatus.FINISHED
    assert {k: stored.tags[k] for k in ("team", "stage", "owner")} == {"team": "maps", "stage": "dev", "owner": "ana"}
    assert stored.metrics == {"loss": 0.2, "acc": 0.9, "f1": 0.8}
    assert [m.timestamp for m in sdk.metric_history(inner.run_id, "loss")][-1] == 1_700_000_000_004
    assert sorted(a.path for a in sdk.repo.list_artifacts(inner.run_id)) == ["a/b.txt", "conf.json", "notes.txt"]


def test_without_an_active_run_logging_says_what_to_do(sdk: TrackingClient) -> None:
    for call in (lambda: mloop.log_metric("x", 1.0), lambda: mloop.log_param("p", 1),
                 lambda: mloop.set_tags({"a": "b"}), lambda: mloop.log_text("t", "t.txt")):
        with pytest.raises(MloopError, match=r"mloop.start_run\(\)"):
            call()
    assert mloop.last_active_run() is None


def test_an_ended_run_object_refuses_module_level_logging_too(sdk: TrackingClient) -> None:
    with mloop.start_run(experiment="eta") as run:
        mloop.log_metric("x", 1.0)
    with pytest.raises(ConflictError, match=f"{run.run_id} has ended"):
        run.log_metric("x", 2.0)
    assert mloop.last_active_run().metrics == {"x": 1.0}


def test_an_experiment_deleted_meanwhile_is_looked_up_again(sdk: TrackingClient, tmp_path: Path) -> None:
    with mloop.start_run(experiment="eta"):
        pass
    other = TrackingClient(sdk.settings)  # another process, in effect
    other.delete_experiment("eta")
    with pytest.raises(ConflictError, match="deleted"):
        mloop.start_run(experiment="eta")
    other.restore_experiment("eta")
    with mloop.start_run(experiment="eta") as run:
        pass
    assert run.info.experiment_id == sdk.get_experiment("eta").experiment_id
