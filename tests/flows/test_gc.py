"""``mloop gc`` and flow runs: a purged run's tasks, artifacts and logs go; other runs' stay, shared bytes too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mloop.flows as flows
from mloop.config import Settings
from mloop.errors import NotFoundError
from mloop.flows.artifacts import ArtifactStore
from mloop.tracking import TrackingClient
from tests.flows.conftest import wait_for_pid

TRIPS = """
import numpy as np
import pandas as pd


def trips(seed):
    \"\"\"2,000 trips: km with 10% nulls, a zone category with nulls, Paris times across the DST change.\"\"\"
    rng = np.random.default_rng(seed)
    km = rng.uniform(0.5, 30, 2_000)
    km[rng.random(2_000) < 0.1] = np.nan
    return rng, pd.DataFrame({
        "km": km, "zone": pd.Categorical(rng.choice(["north", "south", None], 2_000)),
        "at": pd.date_range("2024-03-30", periods=2_000, freq="min", tz="Europe/Paris")})
"""

FLOW = TRIPS + """
import os
import time
from pathlib import Path

from mloop.flows import FlowSpec, Parameter, step


class Trips(FlowSpec):
    seed = Parameter(int, default=1)

    @step
    def start(self):
        _, self.trips = trips(self.seed)
        self.zones = ["north", "south"]  # the same bytes in every run: stored once, shared
        print(f"seed {self.seed}: {len(self.trips)} trips")
        gate = os.environ.get("TRIPS_GATE")
        if gate:
            Path(gate + ".pid").write_text(str(os.getpid()))
            while not Path(gate).exists():
                time.sleep(0.05)
        self.next(self.end)

    @step
    def end(self):
        self.mean_km = float(self.trips["km"].mean())
"""


def _blobs_of(run: flows.FlowRun) -> set[str]:
    shas = set()
    for step in run.steps.values():
        for task in step:
            shas |= {ref.sha256 for ref in task.artifacts.values()}
            shas |= {sha for sha in (task._row.stdout_sha, task._row.stderr_sha) if sha}
    return shas


def _task_ids(run: flows.FlowRun) -> set[str]:
    return {task.id for step in run.steps.values() for task in step}


def test_gc_purges_a_deleted_flow_runs_tasks_artifacts_and_logs(write_flow, home: Path) -> None:
    file = str(write_flow(FLOW))
    doomed, kept = flows.run(file, {"seed": 1}), flows.run(file, {"seed": 2})
    settings = Settings.load()
    root = Path(settings.artifact_root)
    doomed_blobs, kept_blobs = _blobs_of(doomed), _blobs_of(kept)
    shared = doomed_blobs & kept_blobs
    assert shared and doomed_blobs - kept_blobs  # the zones list is shared; the trips differ
    logs = home / "flows" / "logs"
    assert (logs / doomed.id).is_dir() and (logs / kept.id).is_dir()
    doomed_tasks = _task_ids(doomed)

    client = TrackingClient(settings)
    client.delete_run(doomed.id)  # what `mloop runs delete <flow run id>` does
    result = client.gc(older_than=timedelta(0))

    assert result["runs"] == 1 + len(doomed_tasks) and result["kept_for_flows"] == 0
    for sha in doomed_blobs - kept_blobs:
        assert not (root / ArtifactStore.key(sha)).exists()
    for sha in kept_blobs:
        assert (root / ArtifactStore.key(sha)).is_file()
    assert not (logs / doomed.id).exists() and (logs / kept.id).is_dir()
    for task_id in doomed_tasks:
        with pytest.raises(NotFoundError):
            client.get_run(task_id)
    with pytest.raises(NotFoundError):
        flows.get_run(doomed.id)
    again = flows.get_run(kept.id)  # the other run reads back whole
    assert again["end"].task.data.mean_km == pytest.approx(np.nanmean(again["start"].task.data.trips["km"]))
    assert isinstance(again["start"].task.data.trips, pd.DataFrame) and "seed 2" in again["start"].task.stdout
    assert result["files"] >= len(doomed_blobs - kept_blobs) + 2  # blobs, and the local log files at least


def test_gc_keeps_flow_files_while_a_flow_runs_and_purges_them_after(write_flow, home: Path, tmp_path: Path) -> None:
    file = str(write_flow(FLOW))
    doomed = flows.run(file, {"seed": 3})
    settings = Settings.load()
    client = TrackingClient(settings)
    client.delete_run(doomed.id)
    gate = tmp_path / "gate"
    env = {**os.environ, "TRIPS_GATE": str(gate)}
    # the running flow computes the very bytes the doomed run stored (same seed), and records them only at the end
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "flow", "run", file, "--seed", "3"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_pid(Path(str(gate) + ".pid"))
        deadline = time.monotonic() + 60
        while not any(r.status == "running" for r in flows.get("Trips").runs()):  # the orchestrator recorded it
            assert time.monotonic() < deadline and proc.poll() is None, "the flow run never showed as running"
            time.sleep(0.1)
        result = client.gc(older_than=timedelta(0))
        assert result["runs"] == 0 and result["kept_for_flows"] == 1  # the deleted flow run, tasks and all
        gate.write_text("go")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    live = flows.get("Trips").latest_run
    assert live.id != doomed.id and _blobs_of(live) & _blobs_of(doomed)
    result = client.gc(older_than=timedelta(0))
    assert result["runs"] == 1 + len(_task_ids(doomed))
    data = flows.get_run(live.id)["start"].task.data.trips  # the bytes both runs shared are still there
    assert len(data) == 2_000


TRAIN = TRIPS + """
from mloop.flows import FlowSpec, Parameter, current, step
from mloop.tracking import TrackingClient
from mloop.tracking.datasets import describe_dataset


class TrainTrips(FlowSpec):
    seed = Parameter(int, default=1)
    publish = Parameter(int, default=1)

    @step
    def start(self):
        rng, self.trips = trips(self.seed)
        self.trips["minutes"] = self.trips["km"].fillna(10.0) * 2.5 + rng.normal(0, 1, 2_000)
        tracking = TrackingClient(current.settings)
        tracking.repo.log_input(current.task_id, describe_dataset(self.trips, name="trips"), "training")
        print(f"seed {self.seed}: {len(self.trips)} trips")
        self.next(self.train)

    @step
    def train(self):
        from sklearn.linear_model import LinearRegression

        X = self.trips[["km"]].fillna(10.0)
        model = LinearRegression().fit(X, self.trips["minutes"])
        print(f"slope {model.coef_[0]:.2f}")
        self.version = None
        if self.publish:
            self.version = current.log_model(model, "trip-minutes", input_example=X.head(3)).version
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_gc_keeps_a_deleted_flow_run_whose_task_registered_a_model(write_flow, tmp_path: Path, db_url: str) -> None:
    from mloop.registry import registry_for

    settings = Settings.load(home=str(tmp_path / "train-home"), db_url=db_url)
    file = str(write_flow(TRAIN))
    registered = flows.run(file, {"seed": 1}, settings=settings)
    scratch = flows.run(file, {"seed": 2, "publish": 0}, settings=settings)
    root, logs = Path(settings.artifact_root), Path(settings.home) / "flows" / "logs"
    registry = registry_for(settings)
    before = registry.lineage("trip-minutes", registered.data.version)
    kept_blobs, scratch_blobs = _blobs_of(registered), _blobs_of(scratch)
    assert scratch_blobs - kept_blobs

    client = TrackingClient(settings)
    client.delete_run(registered.id)
    client.delete_run(scratch.id)
    result = client.gc(older_than=timedelta(0))

    assert result["runs"] == 1 + len(_task_ids(scratch)) and result["kept_for_registry"] == 1
    lineage = registry.lineage("trip-minutes", registered.data.version)
    assert lineage == before
    assert lineage["flow"]["params"] == {"seed": 1, "publish": 1} and lineage["flow"]["step"] == "train"
    assert [(d["step"], d["name"], d["rows"]) for d in lineage["flow"]["datasets"]] == [("start", "trips", 2_000)]
    for sha in kept_blobs:  # every task's artifacts and captured logs, not only the registering task's
        assert (root / ArtifactStore.key(sha)).is_file()
    for sha in scratch_blobs - kept_blobs:
        assert not (root / ArtifactStore.key(sha)).exists()
    assert (logs / registered.id).is_dir() and not (logs / scratch.id).exists()
    again = flows.get_run(registered.id, settings=settings)
    trips = again["start"].task.data.trips
    assert len(trips) == 2_000 and str(trips["at"].dt.tz) == "Europe/Paris" and trips["km"].isna().any()
    assert "seed 1" in again["start"].task.stdout and "slope" in again["train"].task.stdout
    with pytest.raises(NotFoundError):
        flows.get_run(scratch.id, settings=settings)
    for task_id in _task_ids(scratch):
        with pytest.raises(NotFoundError):
            client.get_run(task_id)


def test_a_flow_run_whose_task_a_guard_protects_stays_whole(write_flow, tmp_path: Path, monkeypatch) -> None:
    """The flow purge keeps a doomed flow run one of whose tasks is protected, whatever guard protects it: purging
    the run's row would take the task's rows, artifacts and logs with it."""
    from mloop.tracking import _retention as retention

    settings = Settings.load(home=str(tmp_path / "train-home"))
    run = flows.run(str(write_flow(TRAIN)), {"seed": 3, "publish": 0}, settings=settings)
    blobs, train_task = _blobs_of(run), run["train"].task.id
    client = TrackingClient(settings)
    client.delete_run(run.id)
    client.delete_run(train_task)  # deleted, yet protected: it stays, as does the run it belongs to
    monkeypatch.setattr(retention, "RUN_GUARDS", [lambda conn: {train_task}])

    result = client.gc(older_than=timedelta(0))

    assert result["runs"] == 0 and result["kept_for_registry"] == 2
    again = flows.get_run(run.id, settings=settings)
    assert _task_ids(again) == _task_ids(run) and len(again["start"].task.data.trips) == 2_000
    assert all((Path(settings.artifact_root) / ArtifactStore.key(sha)).is_file() for sha in blobs)
    assert (Path(settings.home) / "flows" / "logs" / run.id).is_dir()


def test_a_flow_run_started_while_gc_works_keeps_the_doomed_blobs_until_the_next_gc(
        write_flow, home: Path, monkeypatch) -> None:
    """A flow run that starts after gc checked that none ran may store bytes equal to a doomed blob and record them
    after gc read the references: gc deletes no blob that time, and the next gc deletes the ones left."""
    from mloop.flows import _retention as flow_retention
    from mloop.tracking import _retention as retention

    file = str(write_flow(FLOW))
    doomed = flows.run(file, {"seed": 4})
    settings = Settings.load()
    root = Path(settings.artifact_root)
    doomed_blobs, doomed_tasks = _blobs_of(doomed), _task_ids(doomed)
    client = TrackingClient(settings)
    client.delete_run(doomed.id)
    started: list[flows.FlowRun] = []

    def start_a_flow(conn, doomed_ids, protected):  # type: ignore[no-untyped-def]
        def run_one(stores: retention.PurgeStores) -> int:  # runs after the rows are gone, before the flow cleanup
            started.append(flows.run(file, {"seed": 5}))
            return 0

        return retention.PurgePlan(cleanup=run_one)

    monkeypatch.setattr(retention, "PURGE_HOOKS", [start_a_flow, flow_retention.flow_purge])
    result = client.gc(older_than=timedelta(0))
    assert result["runs"] == 1 + len(doomed_tasks)  # the rows go; of the files only the log folder
    with pytest.raises(NotFoundError):
        flows.get_run(doomed.id)
    live_blobs = _blobs_of(started[0])
    left = doomed_blobs - live_blobs
    assert left and live_blobs & doomed_blobs
    assert all((root / ArtifactStore.key(sha)).is_file() for sha in doomed_blobs)
    assert not (home / "flows" / "logs" / doomed.id).exists()

    monkeypatch.setattr(retention, "PURGE_HOOKS", [flow_retention.flow_purge])
    result = client.gc(older_than=timedelta(0))
    assert result["runs"] == 0 and result["files"] == len(left)
    assert not any((root / ArtifactStore.key(sha)).exists() for sha in left)
    assert all((root / ArtifactStore.key(sha)).is_file() for sha in live_blobs)
    assert flows.get_run(started[0].id)["start"].task.data.zones == ["north", "south"]
    assert client.gc(older_than=timedelta(0))["files"] == 0  # nothing is left pending
