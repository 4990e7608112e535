"""On Ray, retraining runs on the cluster: a rule's run_flow names the Ray executor, the flow's tasks run as Ray
tasks (a local ``ray.init(num_cpus=2)`` here), and the gate and the promotion take the version they registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.automation import apply_rules, fire_manual, firings
from mloop.config import Settings
from mloop.flows.client import get_run
from mloop.registry import registry_for
from tests.automation.conftest import weak_champion
from tests.automation.test_crash import FLOW

ray = pytest.importorskip("ray")

# the training step says whether it runs inside a Ray worker (connected to the cluster) or a local process
RAY_FLOW = FLOW.replace("        self.next(self.end)\n", "        import ray\n"
                        "        (HERE / 'on_ray').write_text(str(ray.is_initialized()))\n"
                        "        self.next(self.end)\n", 1)


@pytest.mark.timeout(300)
def test_a_rule_retrains_on_ray_and_promotes_what_it_registered(tmp_path: Path, holdout: str) -> None:
    settings = Settings.load(home=str(tmp_path / "home"))  # MLOOP_HOME, which the Ray workers inherit
    champion = weak_champion(settings)
    registry = registry_for(settings)
    (tmp_path / "retrain.py").write_text(RAY_FLOW)  # trains a better ridge in its first step and registers it
    apply_rules([{"name": "retrain", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"run_flow": {"file": str(tmp_path / "retrain.py"), "executor": "ray"}},
                              {"evaluate": {"holdout": holdout, "target": "target", "metric": "mae"}},
                              {"promote": {"alias": "champion"}}]}], settings=settings)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        (ran,) = fire_manual("retrain", settings=settings)["ran"]
    finally:
        ray.shutdown()
    assert ran["state"] == "done", ran
    (firing,) = firings(settings=settings)
    flow = firing["actions"][0]["result"]
    assert flow["executor"] == "ray"
    run = get_run(flow["flow_run"], settings=settings)
    assert run.executor == "ray" and run.successful
    assert (tmp_path / "on_ray").read_text() == "True"
    assert registry.get_alias("eta", "champion").version == champion + 1
    assert (tmp_path / "trained.log").read_text().count("trained") == 1
