"""The gate on a holdout (the same rows for both models), promotion, and the rollback when the promoted
version's live error is worse than the champion it replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mloop.automation import apply_rules, fire_manual, firings, tick, timeline
from mloop.config import Settings
from mloop.registry import registry_for
from tests.automation.conftest import diabetes, register
from tests.automation.test_triggers import _window


def _gate_rule(holdout: str, **evaluate: object) -> dict:
    return {"name": "retrain", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
            "actions": [{"evaluate": {"holdout": holdout, "target": "target", "metric": "mae", **evaluate}},
                        {"promote": {"alias": "champion"}}]}


def test_a_losing_challenger_stays_registered_and_says_why(settings: Settings, champion: int,
                                                           holdout: str) -> None:
    from sklearn.dummy import DummyRegressor

    x, y = diabetes()
    loser = register(settings, DummyRegressor().fit(x.head(300), y.head(300)), x)
    apply_rules([_gate_rule(holdout, margin=0.5)], settings=settings)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "stopped" and "does not beat the champion by the margin 0.5 on mae" in ran["reason"]
    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == champion
    tag = registry.get_version("eta", loser).tags["automation.gate"]
    assert tag.startswith("rejected: on the holdout: the challenger does")
    (firing,) = firings(settings=settings)
    assert [a["status"] for a in firing["actions"]] == ["stopped", "pending"]  # promote never ran


def test_a_slow_challenger_fails_its_latency_budget(settings: Settings, champion: int, holdout: str) -> None:
    from sklearn.linear_model import Ridge

    x, y = diabetes()
    register(settings, Ridge(alpha=0.1).fit(x, y), x)
    apply_rules([_gate_rule(holdout, max_latency_ms=0.000001)], settings=settings)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "stopped" and "over the budget of 1e-06 ms" in ran["reason"]
    assert registry_for(settings).get_alias("eta", "champion").version == champion


def test_a_winner_is_promoted_then_rolled_back_when_live_error_is_worse(settings: Settings, champion: int,
                                                                        holdout: str) -> None:
    from sklearn.linear_model import Ridge

    from mloop.monitoring import create_monitor

    x, y = diabetes()
    winner = register(settings, Ridge(alpha=0.1).fit(x.head(300), y.head(300)), x)
    apply_rules([_gate_rule(holdout, margin=1.0),
                 {"name": "undo", "given": {"model": "eta"},
                  "trigger": {"kind": "metric_drop", "monitor": "eta-live", "metric": "mae"},
                  "when": "live.mae > previous.mae", "actions": [{"rollback": {"alias": "champion"}}]}],
                settings=settings)
    create_monitor("eta-live", "eta", window="1h", settings=settings)
    hour = datetime(2026, 11, 30, 0, tzinfo=UTC)
    _window(settings, hour, champion, "mae", 48.0)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "done"
    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == winner
    gate = firings(rule="retrain", settings=settings)[0]["actions"][0]["result"]
    assert gate["challenger"]["mae"] < gate["champion"]["mae"] - 1.0

    _window(settings, hour + timedelta(hours=1), winner, "mae", 47.0)  # better than before: stays
    assert tick(now=hour, settings=settings).fired == []
    _window(settings, hour + timedelta(hours=2), winner, "mae", 55.0)  # worse than the old champion's 48
    report = tick(now=hour, settings=settings)
    assert report.ran[0]["state"] == "done"
    assert registry.get_alias("eta", "champion").version == champion
    assert tick(now=hour, settings=settings).ran == []  # the same window: not again
    moves = [e for e in registry.audit("eta", action="alias.set")]
    assert [m.after["version"] for m in moves[:2]] == [champion, winner]  # newest first: back, then forward
    assert [line["what"] for line in timeline("eta", settings=settings)][-2:] == ["undo fired on metric_drop",
                                                                                  "rollback done"]


def test_given_environment_and_promotion_into_an_environment(settings: Settings, champion: int,
                                                            holdout: str) -> None:
    from sklearn.linear_model import Ridge

    registry = registry_for(settings)
    registry.environments.create("prod")
    x, y = diabetes()
    winner = register(settings, Ridge(alpha=0.1).fit(x.head(300), y.head(300)), x)
    rule = _gate_rule(holdout)
    rule["given"]["environment"] = "prod"
    rule["actions"][1]["promote"]["environment"] = "prod"
    apply_rules([rule], settings=settings)
    assert fire_manual("retrain", settings=settings)["firing"] is None  # not deployed in prod: does not apply
    registry.environments.deploy("eta", champion, "prod")
    assert fire_manual("retrain", settings=settings)["ran"][0]["state"] == "done"
    assert registry.environments.current("eta", "prod") == winner
    assert registry.get_version("eta", winner).tags["automation.promote"].startswith("retrain firing ")


def test_the_gate_on_recent_labelled_traffic(settings: Settings, champion: int) -> None:
    """Both models predict the same served rows that got labels (the prediction log and POST /feedback)."""
    import pandas as pd
    from sklearn.dummy import DummyRegressor

    from tests.monitoring.conftest import write_labels, write_predictions

    x, y = diabetes()
    recent = x.tail(120).reset_index(drop=True)
    now = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=30)
    rows = recent.assign(id=[f"r{i}" for i in range(120)], version=str(champion), role="primary", latency_ms=2.0,
                         output=[0.0] * 120,
                         time=pd.date_range(now, periods=120, freq="s").as_unit("ns"))
    write_predictions(settings, "eta", rows, list(x.columns))
    labelled = rows.id.tolist()[:90]  # a quarter never got a label
    write_labels(settings, labelled, y.tail(120).tolist()[:90], now + pd.Timedelta(minutes=5))
    loser = register(settings, DummyRegressor().fit(x.head(300), y.head(300)), x)
    apply_rules([{"name": "retrain", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"evaluate": {"traffic": "1d", "metric": "mae", "min_rows": 50}},
                              {"promote": {}}]}], settings=settings)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "stopped" and "on the traffic: the challenger does not beat" in ran["reason"]
    assert "on the same 90 rows" in ran["reason"]  # the labelled ones only
    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == champion
    assert registry.get_version("eta", loser).tags["automation.gate"].startswith("rejected: on the traffic")


def test_a_challenger_with_a_slice_far_behind_overall_is_not_promoted(settings: Settings, champion: int,
                                                                      holdout: str) -> None:
    from sklearn.linear_model import Ridge

    x, y = diabetes()
    winner = register(settings, Ridge(alpha=0.1).fit(x.head(300), y.head(300)), x)
    apply_rules([_gate_rule(holdout, slices=["sex"], max_slice_gap=0.0001)], settings=settings)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "stopped" and "its worst slice by sex falls" in ran["reason"], ran
    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == champion
    assert registry.get_version("eta", winner).tags["automation.gate"].startswith("rejected: on the holdout: its worst")
    apply_rules([_gate_rule(holdout, slices=["sex"], max_slice_gap=1000)], settings=settings)
    assert fire_manual("retrain", settings=settings)["ran"][0]["state"] == "done"
    assert registry.get_alias("eta", "champion").version == winner


def _holdout_rule(holdout: str, evaluate: dict) -> dict:
    return {"name": "retrain", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
            "actions": [{"evaluate": {"holdout": holdout, "target": "target", **evaluate}},
                        {"promote": {"alias": "champion"}}]}


def test_a_challenger_must_beat_the_champion_on_every_declared_metric(settings: Settings, champion: int,
                                                                       holdout: str) -> None:
    from sklearn.linear_model import Ridge

    x, y = diabetes()
    better = register(settings, Ridge(alpha=0.1).fit(x.head(300), y.head(300)), x)
    apply_rules([_holdout_rule(holdout, {"metrics": {"mae": 1.0, "r2": 0.9}})], settings=settings)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "stopped"  # better on mae by far more than 1.0, but not 0.9 better on r2
    assert "does not beat the champion by the margin 0.9 on r2" in ran["reason"]
    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == champion
    gate = registry.get_version("eta", better).tags["automation.gate"]
    assert gate.index("does not beat") < gate.index("beats the champion by the margin 1.0 on mae")  # failing first

    apply_rules([_holdout_rule(holdout, {"metrics": {"mae": 1.0, "r2": 0.1}})], settings=settings)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "done"
    assert registry.get_alias("eta", "champion").version == better
    result = firings(rule="retrain", settings=settings)[0]["actions"][0]["result"]
    assert set(result["challenger"]) == {"mae", "r2"} and result["challenger"]["r2"] > result["champion"]["r2"] + 0.1


def test_a_challenger_that_predicts_nan_is_not_promoted(settings: Settings, champion: int, holdout: str) -> None:
    from sklearn.linear_model import Ridge

    x, y = diabetes()
    broken = Ridge(alpha=0.1).fit(x.head(300), y.head(300))
    broken.coef_[2] = float("nan")  # every prediction becomes NaN, as a diverged fit's would
    register(settings, broken, x)
    apply_rules([_gate_rule(holdout)], settings=settings)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "stopped" and "the challenger predicted NaN for 100 holdout rows" in ran["reason"]
    assert registry_for(settings).get_alias("eta", "champion").version == champion


def test_a_holdout_that_does_not_fit_the_challengers_schema_is_refused(settings: Settings, champion: int,
                                                                      tmp_path) -> None:
    from sklearn.linear_model import Ridge

    x, y = diabetes()
    register(settings, Ridge(alpha=0.1).fit(x.head(300), y.head(300)), x)
    holdout = tmp_path / "no-bmi.parquet"
    x.tail(100).drop(columns=["bmi"]).assign(target=y.tail(100)).to_parquet(holdout)
    apply_rules([_gate_rule(str(holdout))], settings=settings)
    (ran,) = fire_manual("retrain", settings=settings)["ran"]
    assert ran["state"] == "stopped"
    assert "does not fit the challenger's input schema" in ran["reason"] and "bmi" in ran["reason"]
    assert registry_for(settings).get_alias("eta", "champion").version == champion


def test_the_gates_metrics_are_checked_when_the_rule_is_applied(settings: Settings, holdout: str) -> None:
    import pytest

    from mloop.errors import InvalidInputError

    cases = [({"metrics": {"mae": 1.0, "auc_pr": 0.1}}, "metrics.auc_pr"),
             ({"metrics": {"mae": "a lot"}}, "metrics.mae"),
             ({"metrics": []}, "metrics"),
             ({"metric": "mae", "metrics": {"mae": 1.0}}, "metric"),
             ({}, "metric"),
             ({"metrics": {"mae": 1.0}, "margin": 0.5}, "margin")]
    for evaluate, field in cases:
        with pytest.raises(InvalidInputError) as refused:
            apply_rules([_holdout_rule(holdout, evaluate)], settings=settings)
        assert refused.value.field.endswith(field), (evaluate, refused.value.field)
