"""Monitoring through the CLI (a real process) and the REST API (a real server on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from tests.monitoring.conftest import T0, write_labels, write_predictions
from tests.server.conftest import serve


def regression_traffic(windows: int = 6, per_window: int = 500) -> pd.DataFrame:
    """A regressor's traffic in 15-minute windows; from window 3 its predictions run high and slow."""
    rng = np.random.default_rng(2)
    n = windows * per_window
    w = np.repeat(np.arange(windows), per_window)
    offsets = rng.uniform(0, 899, n)
    frame = pd.DataFrame({"time": pd.Timestamp(T0) + pd.to_timedelta(w * 900 + offsets, unit="s"),
                          "km": rng.gamma(2.0, 3.0, n), "city": rng.choice(["Oslo", "Lyon", "Kyiv"], n)})
    frame["output"] = frame["km"] * 2.0 + np.where(w >= 3, 15.0, 0.0)
    frame["latency_ms"] = np.where(w >= 3, 80.0, 5.0) + rng.random(n)
    frame["id"] = [f"q{i}-0" for i in range(n)]
    frame["version"], frame["role"] = "2", "primary"
    return frame.sort_values("time", ignore_index=True)


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "mloop", *args, "--home", str(home)], capture_output=True,
                            text=True, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"mloop {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def test_the_cli_creates_runs_reads_and_alerts(home: Path, tmp_path: Path) -> None:
    settings = Settings.load(home=str(home))
    traffic = regression_traffic()
    write_predictions(settings, "fare", traffic, ["km", "city"])
    assert "900-second windows" in cli(home, "monitor", "create", "fare-15m", "--model", "fare", "--window",
                                       "15m", "--start", "2026-03-08T06:00:00+00:00",
                                       "--segment", "far-oslo=km > 8 and city = 'Oslo'").stdout
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: slow-fares\n    monitor: fare-15m\n    metric: latency_p99\n"
                     "    above: 50\n    for: 2\n    severity: critical\n")
    assert "slow-fares" in cli(home, "alerts", "apply", str(rules)).stdout
    ran = cli(home, "monitor", "run", "fare-15m").stdout
    assert "6 new window(s)" in ran and "[critical] slow-fares" in ran
    csv = cli(home, "monitor", "series", "fare-15m", "--metric", "prediction_mean", "--csv").stdout
    found = pd.read_csv(pd.io.common.StringIO(csv))
    assert len(found) == 6 and found["value"].iloc[3:].min() > found["value"].iloc[:3].max() + 10
    assert "firing" in cli(home, "alerts", "list", "--firing").stdout
    assert "slow-fares" in cli(home, "alerts", "history").stdout
    assert "silence" in cli(home, "alerts", "silence", "slow-fares", "--until", "2h", "--reason", "deploy").stdout

    _one_window_from_the_cli(home, settings, traffic)

    bad = cli(home, "monitor", "create", "m2", "--model", "fare", "--window", "7m", check=False)
    assert bad.returncode == 2 and "window" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli(home, "alerts", "silence", "slow-fares", "--until", "2020-01-01T00:00:00+00:00", check=False)
    assert bad.returncode == 2 and "until" in bad.stderr


def _one_window_from_the_cli(home: Path, settings: Settings, traffic: pd.DataFrame) -> None:
    """Labels arrive for the second window: ``--window-start`` computes that window again, and no other."""
    start = pd.Timestamp(T0) + pd.Timedelta(minutes=15)
    second = traffic[(traffic["time"] >= start) & (traffic["time"] < start + pd.Timedelta(minutes=15))]
    truth = (second["km"] * 2.0 + 1.0).tolist()  # every prediction 1 below its label
    write_labels(settings, second["id"].tolist(), truth, start + pd.Timedelta(hours=3))
    ran = cli(home, "monitor", "run", "fare-15m", "--window-start", "2026-03-08T06:15:00+00:00", "--json").stdout
    assert {k: v for k, v in json.loads(ran)[0].items() if k != "alerts"} == \
        {"monitor": "fare-15m", "windows": 0, "recomputed": 1, "rows": 500}
    csv = cli(home, "monitor", "series", "fare-15m", "--metric", "mae", "--csv").stdout
    mae = pd.read_csv(pd.io.common.StringIO(csv))
    assert pd.to_datetime(mae["start"]).unique().tolist() == [start]
    assert mae["value"].tolist() == pytest.approx([1.0, 1.0])  # every labelled row, and the declared segment's
    assert mae["slice"].fillna("").tolist() == ["", "segment=far-oslo"]
    far = (second["km"] > 8) & (second["city"] == "Oslo")
    labelled = cli(home, "monitor", "series", "fare-15m", "--metric", "labelled", "--csv").stdout
    counts = pd.read_csv(pd.io.common.StringIO(labelled)).fillna({"slice": ""})
    assert counts.groupby("slice")["value"].sum().to_dict() == {"": 500, "segment=far-oslo": int(far.sum())}
    from mloop.monitoring.rollup import rolled_up_series

    for every in ("1h", "1d"):  # the stored roll-ups know the recomputed window too
        rolled = rolled_up_series("fare-15m", every, ["labelled"], settings=settings).fillna({"slice": ""})
        assert rolled[rolled["slice"] == ""]["value"].sum() == 500, every

    for start, said in [("2026-03-08T06:20:00+00:00", "window_start"), ("2100-01-01T00:00:00+00:00", "closed")]:
        bad = cli(home, "monitor", "run", "fare-15m", "--window-start", start, check=False)
        assert bad.returncode == 2 and said in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    bad = cli(home, "monitor", "run", "--window-start", "2026-03-08T06:15:00+00:00", check=False)
    assert bad.returncode == 2 and "--window-start" in bad.stderr
    for segment, said in [("far", "--segment"), ("far=km >", "segments.far")]:
        bad = cli(home, "monitor", "create", "m3", "--model", "fare", "--segment", segment, check=False)
        assert bad.returncode == 2 and said in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from serve(Settings.load(home=str(tmp_path / "server-home")))


def test_the_rest_api_serves_monitors_series_and_alerts(server) -> None:  # type: ignore[no-untyped-def]
    write_predictions(server.settings, "fare", regression_traffic(), ["km", "city"])
    with httpx.Client(base_url=server.url, timeout=60) as api:
        made = api.post("/api/monitors", json={"name": "fare-15m", "model": "fare", "window": "15m",
                                               "start": "2026-03-08T06:00:00Z", "segments": {"far": "km >= 10"}})
        assert made.status_code == 201 and made.json()["window_seconds"] == 900
        assert made.json()["segments"] == {"far": "km >= 10"}
        assert api.put("/api/alerts/rules", json={"rules": [
            {"name": "drifting-km", "monitor": "fare-15m", "metric": "drift_prev_effect", "column": "(prediction)",
             "above": 0.5}]}).status_code == 200
        ran = api.post("/api/monitors/fare-15m/run").json()
        assert ran["windows"] == 6 and [a["event"] for a in ran["alerts"]] == ["firing", "resolved"]
        series = api.get("/api/monitors/fare-15m/series", params={"metric": ["rows", "latency_p99"]}).json()
        assert set(series) == {"start", "version", "role", "metric", "column", "slice", "value"}
        assert len(series["value"]) == 12 and series["start"][0] == int(T0.timestamp() * 1000)
        profile = api.get("/api/monitors/fare-15m/profile",
                          params={"start": "2026-03-08T06:45:00Z", "version": "2"}).json()
        assert profile["kind"] == "mloop.profile" and profile["rows"] == 500
        assert [h["event"] for h in api.get("/api/alerts/history").json()] == ["firing", "resolved"]
        assert api.get("/api/alerts", params={"firing": True}).json() == []

        refused = api.post("/api/monitors", json={"name": "m", "model": "fare", "window": "1w"})
        assert refused.status_code == 422 and refused.json()["field"] == "window"
        refused = api.post("/api/alerts/silences", json={"rule": "drifting-km", "until": "2001-01-01T00:00:00Z"})
        assert refused.status_code == 422 and refused.json()["field"] == "until"
        refused = api.put("/api/alerts/rules", json={"rules": [{"name": "x", "monitor": "fare-15m",
                                                                "metric": "rows", "above": 1, "below": 2}]})
        assert refused.status_code == 422 and "above" in refused.json()["field"]
        assert api.get("/api/monitors/nope/series").status_code == 404
        refused = api.post("/api/monitors", json={"name": "m", "model": "fare", "segments": {"far": "km >> 1"}})
        assert refused.status_code == 422 and refused.json()["field"] == "segments.far"
        again = api.post("/api/monitors/fare-15m/run", params={"window_start": "2026-03-08T06:30:00Z"}).json()
        assert (again["windows"], again["recomputed"], again["rows"]) == (0, 1, 500)
        refused = api.post("/api/monitors/fare-15m/run", params={"window_start": "2026-03-08T06:31:00Z"})
        assert refused.status_code == 422 and refused.json()["field"] == "window_start"


def test_the_server_runs_monitors_on_its_clock_one_run_at_a_time(tmp_path: Path) -> None:
    from mloop.errors import ConflictError
    from mloop.monitoring import create_monitor, run_monitor, series
    from mloop.monitoring.monitor import _claim
    from mloop.store.sql import open_database

    settings = Settings.load(home=str(tmp_path / "home"), monitor_every_seconds="0.5")
    write_predictions(settings, "fare", regression_traffic(windows=3, per_window=100), ["km", "city"])
    create_monitor("fare-15m", "fare", window="15m", start=T0, settings=settings)
    create_monitor("held", "fare", window="15m", start=T0, settings=settings)
    _claim(open_database(settings.db_url), "held", "another-process")  # a run elsewhere holds this one
    with pytest.raises(ConflictError, match="another process"):
        run_monitor("held", settings=settings)
    for _ in serve(settings):  # nobody asks: the server's clock runs the monitor, and skips the held one
        deadline = time.monotonic() + 60
        while series("fare-15m", "rows", settings=settings).empty and time.monotonic() < deadline:
            time.sleep(0.2)
    assert series("fare-15m", "rows", settings=settings)["value"].tolist() == [100.0] * 3
    assert series("held", "rows", settings=settings).empty


def test_the_scheduler_runs_the_monitors_beside_flows_and_rules(home: Path) -> None:
    settings = Settings.load(home=str(home))
    write_predictions(settings, "fare", regression_traffic(windows=4, per_window=50), ["km", "city"])
    cli(home, "monitor", "create", "fare-15m", "--model", "fare", "--window", "15m", "--start",
        "2026-03-08T06:00:00+00:00")
    # an hour and a few minutes after the first window opened: the four windows have closed (lateness 2 minutes)
    ticked = cli(home, "scheduler", "--once", "--now", "2026-03-08T07:03:00")
    assert "monitors: 4 window(s) computed" in ticked.stdout
    again = cli(home, "scheduler", "--once", "--now", "2026-03-08T07:04:00")
    assert "monitors: 0 window(s) computed" in again.stdout  # the watermark moved: nothing twice
    csv = cli(home, "monitor", "series", "fare-15m", "--metric", "rows", "--csv").stdout
    assert pd.read_csv(pd.io.common.StringIO(csv))["value"].tolist() == [50, 50, 50, 50]
