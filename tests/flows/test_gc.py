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

FLOW = """
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from mloop.flows import FlowSpec, Parameter, step


class Trips(FlowSpec):
    seed = Parameter(int, default=1)

    @step
    def start(self):
        rng = np.random.default_rng(self.seed)
        km = rng.uniform(0.5, 30, 2_000)
        km[rng.random(2_000) < 0.1] = np.nan
        self.trips = pd.DataFrame({
            "km": km, "zone": pd.Categorical(rng.choice(["north", "south", None], 2_000)),
            "at": pd.date_range("2024-03-30", periods=2_000, freq="min", tz="Europe/Paris")})
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
