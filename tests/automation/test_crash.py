"""A runtime killed with SIGKILL in the middle of a firing's flow: the next runtime finds the flow run by its
recorded tag and resumes it (training is not repeated), then gates and promotes exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mloop.automation import apply_rules, fire_manual, firings, run_firings, tick
from mloop.config import Settings
from mloop.registry import registry_for
from tests.automation.conftest import diabetes, register

FLOW = '''
import time
from pathlib import Path

from mloop.flows import FlowSpec, step

HERE = Path(__file__).parent


class Retrain(FlowSpec):
    @step
    def start(self):
        import mloop
        from sklearn.datasets import load_diabetes
        from sklearn.linear_model import Ridge

        with (HERE / "trained.log").open("a") as log:
            log.write("trained\\n")
        x, y = load_diabetes(return_X_y=True, as_frame=True)
        with mloop.start_run("ct") as run:
            run.log_model(Ridge(alpha=0.1).fit(x.head(300), y.head(300)), name="eta", input_example=x.head(3))
        self.next(self.end)

    @step
    def end(self):
        (HERE / "waiting").touch()
        while (HERE / "hold").exists():
            time.sleep(0.05)
'''


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, f"the runtime exited early with {proc.returncode}"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


@pytest.mark.timeout(300)
def test_kill_9_mid_flow_resumes_without_retraining_or_promoting_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, holdout: str) -> None:
    monkeypatch.setenv("MLOOP_AUTOMATION_LEASE_SECONDS", "1")
    settings = Settings.load(home=str(tmp_path / "home"))  # the home the subprocesses get from MLOOP_HOME
    x, y = diabetes()
    from sklearn.linear_model import Ridge

    champion = register(settings, Ridge(alpha=50.0).fit(x.head(300), y.head(300)), x)
    registry_for(settings).set_alias("eta", "champion", champion)
    (tmp_path / "retrain.py").write_text(FLOW)
    (tmp_path / "hold").touch()
    apply_rules([{"name": "retrain", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"run_flow": {"file": str(tmp_path / "retrain.py")}},
                              {"evaluate": {"holdout": holdout, "target": "target", "metric": "mae", "margin": 1}},
                              {"promote": {"alias": "champion"}}]}], settings=settings)
    fire_manual("retrain", run=False, settings=settings)

    runtime = subprocess.Popen([sys.executable, "-m", "mloop", "automation", "tick"], start_new_session=True)
    _wait_for(tmp_path / "waiting", runtime)  # trained and registered; the flow's last step is running
    os.killpg(runtime.pid, signal.SIGKILL)  # the runtime and its step processes, as a lost machine would
    runtime.wait()
    (tmp_path / "hold").unlink()
    (firing,) = firings(settings=settings)
    assert firing["state"] == "running" and firing["actions"][0]["status"] == "running"

    time.sleep(1.1)  # the dead runtime's lease expires
    (ran,) = run_firings(settings=settings)
    assert ran["state"] == "done", ran
    assert (tmp_path / "trained.log").read_text().count("trained") == 1  # finished step reused, not re-run
    registry = registry_for(settings)
    assert [v.version for v in registry.list_versions("eta")] == [champion, champion + 1]
    assert registry.get_alias("eta", "champion").version == champion + 1
    (firing,) = firings(settings=settings)
    assert firing["actions"][0]["result"]["resumed"] is True
    assert run_firings(settings=settings) == [] and tick(settings=settings).ran == []
    moves = registry.audit("eta", action="alias.set")
    assert [m.after["version"] for m in moves] == [champion + 1, champion]  # one promotion, after the first set


@pytest.mark.timeout(300)
def test_a_live_runtime_keeps_its_firing_past_the_lease(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retraining longer than the lease: the runtime renews it, so another runtime does not take the firing
    over (which would resume the same flow run a second time, at once)."""
    monkeypatch.setenv("MLOOP_AUTOMATION_LEASE_SECONDS", "1")
    settings = Settings.load(home=str(tmp_path / "home"))
    (tmp_path / "retrain.py").write_text(FLOW)
    (tmp_path / "hold").touch()
    apply_rules([{"name": "retrain", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"run_flow": {"file": str(tmp_path / "retrain.py")}}]}], settings=settings)
    fire_manual("retrain", run=False, settings=settings)
    runtime = subprocess.Popen([sys.executable, "-m", "mloop", "automation", "tick"])
    try:
        _wait_for(tmp_path / "waiting", runtime)
        time.sleep(2.5)  # more than twice the lease
        assert run_firings(settings=settings) == []  # still owned by the live runtime
    finally:
        (tmp_path / "hold").unlink()
        assert runtime.wait(120) == 0
    (firing,) = firings(settings=settings)
    assert firing["state"] == "done" and (tmp_path / "trained.log").read_text().count("trained") == 1
