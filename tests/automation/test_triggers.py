"""Each trigger kind records one event per condition (a second tick, or a second scheduler, adds nothing) and
fires its rule only when the rule's condition holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import insert

from mloop.automation import apply_rules, firings, tick
from mloop.config import Settings
from mloop.monitoring._tables import monitor_series
from mloop.store.sql import open_database

NOW = datetime(2026, 12, 1, 3, 0, 30, tzinfo=UTC)


def _rule(trigger: dict, when: str = "") -> dict:
    return {"name": "r", "given": {"model": "eta"}, "trigger": trigger, "when": when,
            "actions": [{"notify": {"message": "fired"}}]}


def _window(settings: Settings, start: datetime, version: int, metric: str, value: float) -> None:
    with open_database(settings.db_url).write() as conn:
        conn.execute(insert(monitor_series).values(monitor="eta-live", start=int(start.timestamp() * 1000),
                                                   version=str(version), role="primary", metric=metric, column="",
                                                   slice="", value=value))


def _fired_twice_is_once(settings: Settings, now: datetime = NOW) -> int:
    first = tick(now=now, settings=settings)
    assert tick(now=now, settings=settings).events == []  # the same condition again: nothing new
    return len(first.fired)


def test_new_data_fires_once_per_growth_past_the_watermark(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "landing"
    folder.mkdir()
    part = pd.DataFrame({"zone": ["a", None, "b"] * 40, "trips": range(120)})
    part.to_parquet(folder / "day1.parquet")
    apply_rules([_rule({"kind": "new_data", "path": str(folder), "min_rows": 100}, "data.new_rows >= 100")],
                settings=settings)
    assert _fired_twice_is_once(settings) == 1
    part.head(50).to_parquet(folder / "day2.parquet")  # 50 more: below min_rows, no event
    assert tick(now=NOW, settings=settings).events == []
    part.to_parquet(folder / "day3.parquet")  # 170 past the watermark of 120
    assert _fired_twice_is_once(settings) == 1
    assert [f["event"]["data.rows"] for f in firings(settings=settings)] == [290, 120]


def _trips_store(settings: Settings, tmp_path: Path, project: str, rows: pd.DataFrame) -> object:
    """A feature store of ``project`` with one view ``trips`` over a Parquet folder holding ``rows``."""
    from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64

    folder = tmp_path / f"trips-{project}"
    folder.mkdir(exist_ok=True)
    rows.to_parquet(folder / "part-0.parquet", index=False)
    store = FeatureStore(project=project, settings=settings)
    store.apply([Entity("zone", join_keys=["zone_id"], key_types=[Int64]),
                 FeatureView("trips", entities=["zone"], schema=[Field("count", Float64)],
                             source=FileSource(str(folder)), ttl=timedelta(days=30))])
    return store


def _trips(zones: int, hours_ago: float = 1) -> pd.DataFrame:
    at = pd.Timestamp(NOW) - pd.Timedelta(hours=hours_ago)
    return pd.DataFrame({"zone_id": range(zones), "count": [float(z) for z in range(zones)],
                         "event_timestamp": [at] * zones})


def test_a_materialized_feature_view_fires_once_per_materialization_of_its_project(settings: Settings,
                                                                                   tmp_path: Path) -> None:
    ours = _trips_store(settings, tmp_path, "default", _trips(5))
    theirs = _trips_store(settings, tmp_path, "other", _trips(7))
    apply_rules([_rule({"kind": "new_data", "feature_view": "trips"}, "features.rows > 0")], settings=settings)
    assert tick(now=NOW, settings=settings).events == []
    theirs.materialize(None, NOW)  # another project's view of the same name: not this rule's
    assert tick(now=NOW, settings=settings).events == []
    ours.materialize(None, NOW)
    assert _fired_twice_is_once(settings) == 1
    ours.materialize(NOW, NOW)  # an empty interval: recorded, nothing new to train on
    assert _fired_twice_is_once(settings) == 0
    assert [(f["event"]["features.rows"], f["event"]["features.project"]) for f in firings(settings=settings)] == [
        (5, "default")]
    ours.close()
    theirs.close()


def test_drift_fires_once_per_window_only_when_the_share_is_high(settings: Settings, champion: int) -> None:
    from mloop.monitoring import create_monitor

    create_monitor("eta-live", "eta", window="1h", settings=settings)
    apply_rules([_rule({"kind": "drift", "monitor": "eta-live"}, "drift.share > 0.3")], settings=settings)
    hour = datetime(2026, 11, 30, 0, tzinfo=UTC)
    _window(settings, hour, champion, "drift_share", 0.1)
    assert _fired_twice_is_once(settings) == 0  # recorded, but the condition does not hold
    _window(settings, hour + timedelta(hours=1), champion, "drift_share", 0.6)
    assert _fired_twice_is_once(settings) == 1
    assert "drift.share=0.6" in firings(settings=settings)[0]["reason"]


def test_metric_drop_compares_live_with_training(settings: Settings, champion: int) -> None:
    from mloop.monitoring import create_monitor
    from mloop.registry import registry_for

    create_monitor("eta-live", "eta", window="1h", settings=settings)
    train_mae = 45.0
    registry_for(settings).get_alias("eta", "champion")
    apply_rules([_rule({"kind": "metric_drop", "monitor": "eta-live", "metric": "mae"},
                       f"live.mae > 1.2 * {train_mae}")], settings=settings)
    hour = datetime(2026, 11, 30, 0, tzinfo=UTC)
    _window(settings, hour, champion, "mae", 50.0)
    assert _fired_twice_is_once(settings) == 0
    _window(settings, hour + timedelta(hours=1), champion + 99, "mae", 90.0)  # another version's window: ignored
    assert tick(now=NOW, settings=settings).events == []
    _window(settings, hour + timedelta(hours=2), champion, "mae", 60.0)
    assert _fired_twice_is_once(settings) == 1


def test_code_change_fires_once_per_digest(settings: Settings, champion: int, tmp_path: Path) -> None:
    flow = tmp_path / "train.py"
    flow.write_text("X = 1\n")
    apply_rules([_rule({"kind": "code_change", "file": str(flow)})], settings=settings)
    assert _fired_twice_is_once(settings) == 1
    flow.write_text("X = 2\n")
    assert _fired_twice_is_once(settings) == 1
    assert tick(now=NOW, settings=settings).events == []


def test_two_schedulers_record_one_event_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    """Two runtimes in two processes tick the same minute at once: one event, one firing, one notify."""
    import subprocess
    import sys

    settings = Settings.load(home=str(tmp_path / "home"), db_url=postgres_url)
    apply_rules([_rule({"kind": "schedule", "cron": "* * * * *"})], settings=settings)
    code = ("import sys; from datetime import datetime, UTC; from mloop.config import Settings; "
            "from mloop.automation import tick; "
            f"s = Settings.load(home={str(tmp_path / 'home')!r}, db_url=sys.argv[1]); "
            "r = tick(now=datetime(2026, 12, 1, 3, 0, tzinfo=UTC), settings=s); print(len(r.fired))")
    procs = [subprocess.Popen([sys.executable, "-c", code, postgres_url], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outputs == ["0", "1"]
    (firing,) = firings(settings=settings)
    assert firing["state"] == "done" and [a["status"] for a in firing["actions"]] == ["done"]


def test_code_change_compares_the_repository_with_the_champions_training_commit(settings: Settings, champion: int,
                                                                                  tmp_path: Path) -> None:
    import subprocess

    from mloop.registry import registry_for

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), "-c", "user.name=ct", "-c", "user.email=ct@example.com",
                               *args], check=True, capture_output=True, text=True).stdout.strip()

    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q")
    (repo / "train.py").write_text("X = 1\n")
    git("add", "train.py")
    git("commit", "-qm", "first")
    registry = registry_for(settings)  # as if the champion's run had been started from this checkout
    registry.runs.set_tags(registry.get_version("eta", champion).run_id, {"mloop.git.commit": git("rev-parse", "HEAD")})
    apply_rules([_rule({"kind": "code_change", "git": str(repo)})], settings=settings)
    assert tick(now=NOW, settings=settings).events == []  # the code that trained the champion: no change
    (repo / "train.py").write_text("X = 2\n")
    git("commit", "-qam", "second")
    assert _fired_twice_is_once(settings) == 1
    assert firings(settings=settings)[0]["event"]["code.commit"] == git("rev-parse", "HEAD")


@pytest.mark.parametrize("trigger", [{"kind": "drift"}, {"kind": "new_data", "path": "x", "min_rows": "many"},
                                     {"kind": "new_data", "path": "x", "feature_view": "trips"},
                                     {"kind": "schedule", "cron": "* * *", "extra": 1}])
def test_bad_triggers_name_the_field(settings: Settings, trigger: dict) -> None:
    from mloop.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as err:
        apply_rules([_rule(trigger)], settings=settings)
    assert err.value.field.startswith("r.trigger.")
