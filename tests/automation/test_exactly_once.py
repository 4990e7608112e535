"""Exactly once where it matters: a notification survives a runtime killed on either side of its commit and
reaches a real webhook receiver once; the gate judges the version the firing's flow run registered, not the
model's newest; a rollback past the rule's window is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mloop.automation import apply_rules, fire_manual, firings, run_firings
from mloop.config import Settings
from mloop.events.worker import DeliveryWorker
from mloop.registry import registry_for
from tests.automation.conftest import champion_and_challenger, weak_champion
from tests.events.receiver import Receiver


@pytest.mark.timeout(120)
@pytest.mark.parametrize("crash", ["notify.before_commit", "notify.after_commit"])
def test_notify_reaches_the_receiver_once_across_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         crash: str) -> None:
    monkeypatch.setenv("MLOOP_AUTOMATION_LEASE_SECONDS", "1")
    monkeypatch.setenv("MLOOP_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    settings = Settings.load(home=str(tmp_path / "home"))  # the runtime subprocess's home (MLOOP_HOME)
    receiver = Receiver()
    try:
        registry_for(settings).webhooks.add(receiver.url, "s" * 32, events=["automation.notify"])
        apply_rules([{"name": "tell", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                      "actions": [{"notify": {"message": "eta retrained"}}]}], settings=settings)
        fire_manual("tell", run=False, settings=settings)
        died = subprocess.run([sys.executable, "-m", "mloop", "automation", "tick"], timeout=90,
                              env={**os.environ, "MLOOP_AUTOMATION_FAILPOINT": crash})
        assert died.returncode == 137  # it died at the failpoint, as kill -9 would leave it
        (firing,) = firings(settings=settings)
        assert firing["state"] == "running"
        time.sleep(1.1)  # the dead runtime's lease expires
        (ran,) = run_firings(settings=settings)
        assert ran["state"] == "done"
        assert DeliveryWorker(settings).run_until_empty(timeout=30)
        assert receiver.wait_for(1)
        time.sleep(0.3)
        assert DeliveryWorker(settings).run_once() == 0
        bodies = [b for b in receiver.bodies() if b["event"] == "automation.notify"]
        assert len(bodies) == 1 and bodies[0]["message"] == "eta retrained"
        assert bodies[0]["event_id"] == firings(settings=settings)[0]["actions"][0]["result"]["event_id"]
    finally:
        receiver.close()


FLOW = '''
from pathlib import Path

from mloop.flows import FlowSpec, step

HERE = Path(__file__).parent


class Retrain(FlowSpec):
    @step
    def start(self):
        import mloop
        from sklearn.datasets import load_diabetes
        from sklearn.linear_model import Ridge

        x, y = load_diabetes(return_X_y=True, as_frame=True)
        with mloop.start_run("ct") as run:  # nested in this task: the version the flow run produced
            run.log_model(Ridge(alpha=0.1).fit(x.head(300), y.head(300)), name="eta", input_example=x.head(3))
        self.next(self.end)

    @step
    def end(self):
        from sklearn.datasets import load_diabetes
        from sklearn.dummy import DummyRegressor

        from mloop.config import Settings
        from mloop.registry import registry_for, save_model

        x, y = load_diabetes(return_X_y=True, as_frame=True)
        # someone else's newer version, registered meanwhile from outside any run of this flow
        save_model(DummyRegressor().fit(x, y), HERE / "decoy", input_example=x.head(3))
        registry_for(Settings.load()).register("eta", HERE / "decoy")
'''


@pytest.mark.timeout(300)
def test_the_gate_judges_the_version_the_flow_run_registered(tmp_path: Path, holdout: str) -> None:
    settings = Settings.load(home=str(tmp_path / "home"))
    champion = weak_champion(settings)
    registry = registry_for(settings)
    (tmp_path / "retrain.py").write_text(FLOW)
    apply_rules([{"name": "retrain", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"run_flow": {"file": str(tmp_path / "retrain.py")}},
                              {"evaluate": {"holdout": holdout, "target": "target", "metric": "mae"}},
                              {"promote": {"alias": "champion"}}]}], settings=settings)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "done", ran
    versions = [v.version for v in registry.list_versions("eta")]
    assert versions == [champion, champion + 1, champion + 2]  # the decoy is the newest
    (firing,) = firings(settings=settings)
    assert firing["actions"][1]["result"]["challenger_version"] == champion + 1
    assert registry.get_alias("eta", "champion").version == champion + 1


def test_no_automatic_rollback_after_the_rules_window(db_url: str, tmp_path: Path) -> None:
    # on both stores: the promotion and rollback go through the registry's transaction API
    settings = Settings.load(home=str(tmp_path / "home"), db_url=db_url, user="ct")
    champion, winner = champion_and_challenger(settings)
    registry = registry_for(settings)
    apply_rules([{"name": "up", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"promote": {"alias": "champion"}}]},
                 {"name": "late", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"rollback": {"alias": "champion", "window": 1}}]},
                 {"name": "soon", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"rollback": {"alias": "champion", "window": "1h"}}]}], settings=settings)
    assert fire_manual("up", settings=settings)["ran"][0]["state"] == "done"
    assert registry.get_alias("eta", "champion").version == winner
    time.sleep(1.5)
    (late,) = fire_manual("late", settings=settings)["ran"]
    assert late["state"] == "stopped" and "past the rule's window of 1" in late["reason"]
    assert registry.get_alias("eta", "champion").version == winner
    (soon,) = fire_manual("soon", settings=settings)["ran"]
    assert soon["state"] == "done"
    assert registry.get_alias("eta", "champion").version == champion
