"""The triggers that read a source directly: the flow code that trained the champion, a tracked metric, a data
file against the champion's training profile, a growing database table; each fires once per condition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import insert

from mloop.automation import apply_rules, firings, list_rules, tick
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.monitoring._tables import monitor_series
from mloop.registry import registry_for
from mloop.store.sql import open_database
from tests.automation.conftest import diabetes

NOW = datetime(2026, 12, 1, 3, 0, 30, tzinfo=UTC)

TRAIN_FLOW = '''
from mloop.flows import FlowSpec, step


class Train(FlowSpec):
    @step
    def start(self):
        import mloop
        from sklearn.datasets import load_diabetes
        from sklearn.linear_model import Ridge

        x, y = load_diabetes(return_X_y=True, as_frame=True)
        with mloop.start_run("ct") as run:
            run.log_model(Ridge(alpha=1.0).fit(x, y), name="eta", input_example=x.head(3))
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def _rule(trigger: dict, when: str = "") -> dict:
    return {"name": "r", "given": {"model": "eta"}, "trigger": trigger, "when": when,
            "actions": [{"notify": {"message": "fired"}}]}


def _events(settings: Settings) -> list:
    return tick(now=NOW, settings=settings).events


@pytest.mark.timeout(300)
def test_code_change_compares_the_flow_file_with_the_digest_its_run_recorded(settings: Settings,
                                                                             tmp_path: Path) -> None:
    from mloop.flows.runtime import run_flow

    flow = tmp_path / "train.py"
    flow.write_text(TRAIN_FLOW)
    outcome = run_flow(str(flow), settings=settings)
    registry = registry_for(settings)
    (version,) = registry.versions_from_run(outcome.run_id, "eta")
    registry.set_alias("eta", "champion", version.version)
    trained = registry.runs.get_run(outcome.run_id).tags["mloop.flow.digest"]
    apply_rules([_rule({"kind": "code_change", "file": str(flow)})], settings=settings)
    assert _events(settings) == [] and _events(settings) == []  # the code that trained the champion
    flow.write_text(TRAIN_FLOW + "\n# a tuned training step\n")
    (event,) = _events(settings)
    assert event["payload"]["code.before"] == trained and event["payload"]["code.digest"] != trained
    assert _events(settings) == []  # the same edit: once
    assert len(firings(settings=settings)) == 1


def _training_run(settings: Settings, metric: float | None, finish: bool = True) -> Any:
    from mloop.tracking import TrackingClient

    run = TrackingClient(settings).start_run("eta-train")
    if metric is not None:
        run.log_metric("val_mae", metric)
    if finish:
        run.end()
    else:
        run.flush()
    return run


def test_metric_drop_from_the_latest_finished_run_of_an_experiment(settings: Settings, champion: int) -> None:
    apply_rules([_rule({"kind": "metric_drop", "run_metric": "val_mae", "experiment": "eta-train", "above": 50})],
                settings=settings)
    assert _events(settings) == []  # no such experiment yet
    _training_run(settings, 40.0)
    assert _events(settings) == []  # within the bound
    worse = _training_run(settings, 60.0).run_id
    (event,) = _events(settings)
    assert event["payload"] == {"run.val_mae": 60.0, "run.id": worse} and event["holds"]
    assert _events(settings) == []  # the same run: once
    _training_run(settings, None)  # finished last, without the metric: nothing to compare
    assert _events(settings) == []
    running = _training_run(settings, 90.0, finish=False)  # not finished: not the latest finished run
    assert _events(settings) == []
    running.end()
    assert [f["event"]["run.id"] for f in firings(settings=settings)] == [worse]


def test_metric_drop_from_the_champions_training_run(settings: Settings) -> None:
    from sklearn.linear_model import Ridge

    from mloop._sdk import ActiveRun
    from mloop.tracking import TrackingClient

    x, y = diabetes()
    with TrackingClient(settings).start_run("ct", run_class=ActiveRun) as run:
        assert isinstance(run, ActiveRun)
        run.log_metric("val_r2", 0.2)
        version = run.log_model(Ridge(alpha=50.0).fit(x, y), name="eta", input_example=x.head(3)).version
    registry_for(settings).set_alias("eta", "champion", version)
    apply_rules([_rule({"kind": "metric_drop", "run_metric": "val_r2", "below": 0.3}, "run.val_r2 < 0.3")],
                settings=settings)
    (event,) = _events(settings)
    assert event["key"] == f"metric_drop:r:run:{run.run_id}" and event["holds"]
    assert _events(settings) == []


def test_metric_drop_below_fires_only_under_the_bound(settings: Settings, champion: int) -> None:
    from mloop.monitoring import create_monitor

    create_monitor("eta-live", "eta", window="1h", settings=settings)
    apply_rules([_rule({"kind": "metric_drop", "monitor": "eta-live", "metric": "r2", "below": 0.3})],
                settings=settings)
    hour = datetime(2026, 11, 30, 0, tzinfo=UTC)
    for offset, value in ((0, 0.5), (1, 0.3)):  # above, then at the bound: not below it, nothing recorded
        _window(settings, hour + timedelta(hours=offset), champion, "r2", value)
        assert _events(settings) == []
    _window(settings, hour + timedelta(hours=2), champion, "r2", 0.1)
    (event,) = _events(settings)
    assert event["payload"]["live.r2"] == 0.1
    assert _events(settings) == []


def _window(settings: Settings, start: datetime, version: int, metric: str, value: float) -> None:
    with open_database(settings.db_url).write() as conn:
        conn.execute(insert(monitor_series).values(monitor="eta-live", start=int(start.timestamp() * 1000),
                                                   version=str(version), role="primary", metric=metric, column="",
                                                   slice="", value=value))


def test_drift_of_a_data_file_against_the_champions_training_profile(settings: Settings, champion: int,
                                                                     tmp_path: Path) -> None:
    from mloop.validation import attach_to_model_version

    x, _ = diabetes()
    attach_to_model_version("eta", champion, data=x.head(300), registry=registry_for(settings))
    apply_rules([_rule({"kind": "drift", "data": str(tmp_path / "fresh.parquet"), "share": 0.3})],
                settings=settings)
    x.head(300).to_parquet(tmp_path / "fresh.parquet")  # the training rows themselves: no drift
    assert _events(settings) == []
    shifted = x.head(300).copy()
    shifted[["bmi", "bp", "s1", "s5"]] += 0.2  # four of ten columns moved by several standard deviations
    shifted.to_parquet(tmp_path / "fresh.parquet")
    (event,) = _events(settings)
    assert event["payload"]["drift.share"] == pytest.approx(0.4) and event["holds"]
    assert _events(settings) == []  # the same file: once
    assert len(firings(settings=settings)) == 1


def test_drift_of_data_needs_the_champions_profile(settings: Settings, champion: int, tmp_path: Path) -> None:
    diabetes()[0].to_parquet(tmp_path / "fresh.parquet")
    apply_rules([_rule({"kind": "drift", "data": str(tmp_path / "fresh.parquet")})], settings=settings)
    report = tick(now=NOW, settings=settings)
    assert report.events == [] and "no training profile" in report.errors[0]


def test_new_data_counts_a_growing_table(db_url: str, settings: Settings) -> None:
    engine = sa.create_engine(db_url)
    rows = sa.Table("trips", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    rows.create(engine)

    def add(count: int) -> None:
        with engine.begin() as conn:
            start = conn.execute(sa.select(sa.func.count()).select_from(rows)).scalar_one()
            conn.execute(rows.insert(), [{"id": start + i} for i in range(count)])

    try:
        apply_rules([_rule({"kind": "new_data", "table": "trips", "db_url": db_url, "min_rows": 10})],
                    settings=settings)
        add(20)
        (event,) = _events(settings)
        assert event["payload"] == {"data.rows": 20, "data.new_rows": 20, "data.table": "trips"}
        assert _events(settings) == []
        add(5)  # below min_rows past the watermark of 20
        assert _events(settings) == []
        add(10)
        assert [e["payload"]["data.new_rows"] for e in _events(settings)] == [15]
        assert len(firings(settings=settings)) == 2
    finally:
        engine.dispose()


def test_a_missing_table_is_reported_not_raised(settings: Settings, tmp_path: Path) -> None:
    apply_rules([_rule({"kind": "new_data", "table": "nothing_here", "db_url": f"sqlite:///{tmp_path / 'd.db'}"})],
                settings=settings)
    report = tick(now=NOW, settings=settings)
    assert report.events == [] and "nothing_here" in report.errors[0]


@pytest.mark.parametrize("trigger, field", [
    ({"kind": "new_data", "table": "trips; DROP TABLE trips", "db_url": "sqlite://"}, "r.trigger.table"),
    ({"kind": "new_data", "table": "a.b.c", "db_url": "sqlite://"}, "r.trigger.table"),
    ({"kind": "new_data", "table": "trips"}, "r.trigger.db_url"),
    ({"kind": "new_data", "table": "trips", "db_url": "not a url"}, "r.trigger.db_url"),
    ({"kind": "new_data", "path": "x", "db_url": "sqlite://"}, "r.trigger.db_url"),
    ({"kind": "new_data", "path": "x", "table": "trips", "db_url": "sqlite://"}, "r.trigger.table"),
    ({"kind": "new_data", "path": "x", "project": "p"}, "r.trigger.project"),
    ({"kind": "drift", "data": "x.parquet", "share": 1.5}, "r.trigger.share"),
    ({"kind": "drift", "monitor": "m", "share": 0.3}, "r.trigger.share"),
    ({"kind": "drift", "monitor": "m", "data": "x.parquet"}, "r.trigger.data"),
    ({"kind": "metric_drop", "monitor": "m"}, "r.trigger.metric"),
    ({"kind": "metric_drop", "run_metric": "val_mae", "metric": "mae"}, "r.trigger.metric"),
    ({"kind": "metric_drop", "run_metric": "val_mae", "above": "high"}, "r.trigger.above"),
    ({"kind": "metric_drop", "run_metric": ""}, "r.trigger.run_metric"),
    ({"kind": "metric_drop", "experiment": "e"}, "r.trigger.monitor"),
])
def test_bad_source_options_name_the_field(settings: Settings, trigger: dict, field: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        apply_rules([_rule(trigger)], settings=settings)
    assert err.value.field == field
    assert list_rules(settings) == []
