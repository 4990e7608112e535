"""The record of a firing: every judged version leads back to the firing and the event that caused it; a firing
runs the rule version that fired; ``given`` decides which models a rule applies to."""

from __future__ import annotations

import pytest

from mloop.automation import apply_rules, fire_manual, firings, run_firings
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.registry import registry_for
from tests.automation.conftest import champion_and_challenger


def _gated(holdout: str) -> dict:
    return {"name": "retrain", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
            "when": "drift.share > 0.3",
            "actions": [{"evaluate": {"holdout": holdout, "target": "target", "metric": "mae", "margin": 1}},
                        {"promote": {"alias": "champion"}}]}


@pytest.mark.parametrize("better", [True, False])
def test_a_judged_version_leads_back_to_the_event_that_caused_it(settings: Settings, holdout: str,
                                                                 better: bool) -> None:
    champion, challenger = champion_and_challenger(settings, better=better)
    apply_rules([_gated(holdout)], settings=settings)
    fired = fire_manual("retrain", {"drift.share": 0.45, "window": "2026-12-01T02:00"}, settings=settings)
    assert fired["ran"][0]["state"] == ("done" if better else "stopped")
    registry = registry_for(settings)
    tags = registry.get_version("eta", challenger).tags
    (firing,) = firings(firing=tags["automation.firing"], settings=settings)  # version -> firing -> event
    assert firing["id"] == fired["firing"] and firing["rule"] == "retrain"
    assert firing["event"] == {"manual": True, "drift.share": 0.45, "window": "2026-12-01T02:00"}
    assert tags["automation.evaluate"] == f"retrain firing {firing['id']}"
    assert tags["automation.gate"].startswith("passed" if better else "rejected")
    assert ("automation.promote" in tags) is better
    assert "automation.firing" not in registry.get_version("eta", champion).tags  # the champion was not judged
    assert firings(firing="0" * 32, settings=settings) == []
    with pytest.raises(InvalidInputError) as err:
        firings(firing="not an id", settings=settings)
    assert err.value.field == "firing"


def test_a_firing_runs_the_rule_version_that_fired(settings: Settings) -> None:
    def tell(message: str) -> list:
        return [{"name": "tell", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                 "actions": [{"notify": {"message": message}}]}]

    apply_rules(tell("from version one"), settings=settings)
    first = fire_manual("tell", run=False, settings=settings)["firing"]
    assert apply_rules(tell("from version two"), settings=settings)[0]["version"] == 2
    assert [r["state"] for r in run_firings(settings=settings)] == ["done"]
    second = fire_manual("tell", settings=settings)["firing"]
    messages = {f["id"]: (f["rule_version"], f["actions"][0]["result"]["message"]) for f in firings(settings=settings)}
    assert messages == {first: (1, "from version one"), second: (2, "from version two")}


def test_given_tags_pick_the_models_a_rule_applies_to(settings: Settings, champion: int) -> None:
    registry = registry_for(settings)
    apply_rules([{"name": "maps-only", "given": {"model": "eta", "tags": {"team": "maps"}},
                  "trigger": {"kind": "manual"}, "actions": [{"notify": {"message": "maps"}}]}], settings=settings)
    registry.update_model("eta", tags={"team": "search"})
    refused = fire_manual("maps-only", request_id="one", settings=settings)
    assert refused["recorded"] and refused["firing"] is None
    assert "model tags {'team': 'maps'} do not match" in refused["reason"]
    registry.update_model("eta", tags={"team": "maps"})
    fired = fire_manual("maps-only", request_id="two", settings=settings)
    assert fired["ran"][0]["state"] == "done"
    assert [f["id"] for f in firings(settings=settings)] == [fired["firing"]]
