"""Rules: parsed and validated at apply, versioned, paused; the when language; a dry run changes nothing."""

from __future__ import annotations

import pytest

from mloop._util.conditions import parse_when
from mloop.automation import apply_rules, dry_run, fire_manual, firings, list_rules, set_paused
from mloop.errors import InvalidInputError

RULES = """
rules:
  - name: on-drift
    given: {model: eta}
    trigger: {kind: schedule, cron: "* * * * *"}
    when: drift.share > 0.3 or live.mae > 1.2 * train.mae
    actions:
      - promote: {alias: champion}
"""


def test_when_arithmetic_between_fields_and_missing_fields() -> None:
    cond = parse_when("drift.share > 0.3 or live.mae > 1.2 * train.mae")
    assert cond.evaluate({"live.mae": 5.0, "train.mae": 4.0})
    assert not cond.evaluate({"live.mae": 4.5, "train.mae": 4.0})
    assert not cond.evaluate({})  # missing fields make comparisons false, never an error
    assert "live.mae is missing" in cond.explain({})
    assert parse_when("not (a.b - 1) / 2 < -3").evaluate({"a.b": 100})


@pytest.mark.parametrize("source, where", [("drift.share >", 13), ("__import__('os')", 10), ("a = 1 b", 6)])
def test_when_syntax_errors_point_at_the_mistake(source: str, where: int) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_when(source)
    assert err.value.field == "when" and f"position {where}" in err.value.message


def test_when_nesting_is_bounded() -> None:
    with pytest.raises(InvalidInputError, match="nested"):
        parse_when("(" * 200 + "a > 1" + ")" * 200)


def test_apply_versions_and_validates(settings) -> None:  # type: ignore[no-untyped-def]
    assert apply_rules(RULES, settings=settings) == [{"name": "on-drift", "version": 1, "changed": True}]
    assert apply_rules(RULES, settings=settings)[0] == {"name": "on-drift", "version": 1, "changed": False}
    assert apply_rules(RULES.replace("0.3", "0.4"), settings=settings)[0]["version"] == 2
    for bad, field in [(RULES.replace("promote", "deploy"), "on-drift.actions[0]"),
                       (RULES.replace("promote: {alias: champion}", "shadow: {max_error_rate: 0.1}"),
                        "on-drift.actions[0].shadow.requests"),
                       (RULES.replace("promote: {alias: champion}", "canary: {percent: 120, requests: 9}"),
                        "on-drift.actions[0].canary.percent"),
                       (RULES.replace("promote: {alias: champion}", "rollback: {window: soon}"),
                        "on-drift.actions[0].rollback.window"),
                       (RULES.replace("schedule", "sometimes"), "on-drift.trigger.kind"),
                       (RULES.replace('"* * * * *"', '"61 * * * *"'), "on-drift.trigger.cron"),
                       (RULES.replace("0.3 or", "0.3 or or"), "when")]:
        with pytest.raises(InvalidInputError) as err:
            apply_rules(bad, settings=settings)
        assert err.value.field == field
    assert list_rules(settings)[0]["version"] == 2  # a refused file changed nothing


def _counts(settings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from mloop.store.sql import open_database

    tables = ("automation_events", "automation_firings", "automation_actions", "event_outbox", "model_aliases",
              "registry_audit", "model_version_tags")
    with open_database(settings.db_url).read() as conn:
        names = set(sa.inspect(conn).get_table_names())
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables if t in names}


def test_dry_run_changes_nothing_then_tick_fires_once(settings, champion) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from sklearn.linear_model import Ridge

    from mloop.automation import tick
    from mloop.registry import registry_for
    from tests.automation.conftest import diabetes, register

    x, y = diabetes()
    challenger = register(settings, Ridge(alpha=0.1).fit(x, y), x)
    apply_rules(RULES.replace("when: drift.share > 0.3 or live.mae > 1.2 * train.mae", ""), settings=settings)
    now = datetime(2026, 12, 1, 3, 0, 30, tzinfo=UTC)
    before = _counts(settings)
    shown = dry_run(now=now, settings=settings)
    assert shown[0]["would_fire"] and shown[0]["actions"] == ["promote"]
    assert _counts(settings) == before
    assert registry_for(settings).get_alias("eta", "champion").version == champion

    report = tick(now=now, settings=settings)
    assert len(report.fired) == 1 and report.ran[0]["state"] == "done"
    assert registry_for(settings).get_alias("eta", "champion").version == challenger
    assert tick(now=now.replace(second=59), settings=settings).events == []  # the same minute: once
    assert dry_run(now=now, settings=settings)[0]["already_recorded"]


def test_paused_rule_neither_observes_nor_fires(settings, champion) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from mloop.automation import tick

    apply_rules(RULES.replace("when: drift.share > 0.3 or live.mae > 1.2 * train.mae", "").replace(
        "promote: {alias: champion}", "notify: {message: hi}"), settings=settings)
    set_paused("on-drift", True, settings)
    assert list_rules(settings)[0]["paused"]
    assert tick(now=datetime(2026, 12, 1, 3, 0, tzinfo=UTC), settings=settings).events == []
    with pytest.raises(InvalidInputError, match="paused"):
        fire_manual("on-drift", settings=settings)
    set_paused("on-drift", False, settings)
    assert fire_manual("on-drift", request_id="r1", settings=settings)["ran"][0]["state"] == "done"
    assert not fire_manual("on-drift", request_id="r1", settings=settings)["recorded"]  # a retry fires once
    with pytest.raises(InvalidInputError) as err:
        fire_manual("on-drift", request_id="x" * 600, settings=settings)
    assert err.value.field == "request_id"
    assert [a["status"] for a in firings(settings=settings)[0]["actions"]] == ["done"]
