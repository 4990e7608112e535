"""parallel=N on Ray: N Ray tasks share the study (a small local Ray, skipped when the machine is overloaded)."""

from __future__ import annotations

import os
from typing import Any

import pytest

import mloop
from tests.tuning.conftest import SPACE

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(240)


def test_ray_tasks_share_one_study(objectives: Any) -> None:
    if os.getloadavg()[0] > 4 * (os.cpu_count() or 1):
        pytest.skip(f"the machine is overloaded (load {os.getloadavg()[0]:.0f}): starting Ray would time out")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ["PYTHONPATH"]])}})
    try:
        study = mloop.tune(objectives.quadratic, SPACE, n_trials=8, parallel=2, backend="ray", study="on-ray")
    finally:
        ray.shutdown()
    frame = study.trials_frame()
    assert len(frame) == 8 and (frame["state"] == "complete").all()
    pids = {mloop.get_run(r).tags["mloop.pid"] for r in frame["run_id"]}
    assert str(os.getpid()) not in pids  # Ray workers ran them
