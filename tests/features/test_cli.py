"""The ``mloop features`` commands, run as a user would (a subprocess in a folder with features.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

NOW = pd.Timestamp.now(tz="UTC").floor("s")
REPO = '''
from datetime import timedelta
from mloop.features import Entity, FeatureView, FeatureService, Field, FileSource, Float64
zone = Entity("zone", join_keys=["zone_id"])
stats = FeatureView("zone_stats", entities=[zone], schema=[Field("x", Float64)], source=FileSource("zones/"),
                    ttl=timedelta(days=1), tags={"team": "eta"}, description="Zone statistics")
model = FeatureService("model", features=["zone_stats:x"])
'''


def _mloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mloop", "features", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_plan_apply_list_describe_materialize_online(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    pd.DataFrame({"zone_id": [1, 2], "x": [1.5, 2.5], "event_timestamp": [NOW - pd.Timedelta(hours=1)] * 2}
                 ).to_parquet(tmp_path / "zones" / "p.parquet")
    (tmp_path / "features.py").write_text(REPO)
    out = _mloop("plan", cwd=tmp_path)
    assert out.returncode == 0 and "+ feature view zone_stats (new, v1)" in out.stdout
    assert "applied" in _mloop("apply", cwd=tmp_path).stdout
    assert "nothing to apply" in _mloop("apply", cwd=tmp_path).stdout
    listed = json.loads(_mloop("list", "--tag", "team=eta", "--json", cwd=tmp_path).stdout)
    assert [d["name"] for d in listed] == ["zone_stats"]
    out = _mloop("materialize", "--end", (NOW + pd.Timedelta(minutes=1)).isoformat(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "zone_stats" in out.stdout
    info = json.loads(_mloop("describe", "zone_stats", "--json", cwd=tmp_path).stdout)
    assert info["statistics"][0]["count"] == 2 and info["watermark"]
    got = json.loads(_mloop("online", "--service", "model", "--entity", "zone_id=1,2,3", cwd=tmp_path).stdout)
    assert got["features"]["x"] == [1.5, 2.5, None] and got["status"]["zone_stats"][2] == "not_found"
    assert _mloop("materialize-incremental", cwd=tmp_path).returncode == 0


def test_bad_definitions_exit_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    pd.DataFrame({"zone_id": [1], "y": [1.0], "event_timestamp": [NOW]}).to_parquet(tmp_path / "zones" / "p.parquet")
    (tmp_path / "features.py").write_text(REPO)
    out = _mloop("apply", cwd=tmp_path)
    assert out.returncode == 2
    assert "feature view 'zone_stats': feature 'x' is missing in the source" in out.stderr
    assert "Traceback" not in out.stderr


def test_online_as_of_a_past_moment_with_time_zones(tmp_path: Path) -> None:
    (tmp_path / "zones").mkdir()
    # New York falls back on 2026-11-01: 01:30 happens at 05:30Z (-04:00) and again at 06:30Z (-05:00)
    stamps = pd.to_datetime(["2026-11-01T01:10-04:00", "2026-11-01T01:30-05:00"], utc=True)
    pd.DataFrame({"zone_id": [1, 2], "x": [1.5, None], "event_timestamp": stamps}).to_parquet(
        tmp_path / "zones" / "p.parquet")
    (tmp_path / "features.py").write_text(REPO)
    assert _mloop("apply", cwd=tmp_path).returncode == 0
    assert _mloop("materialize", "--end", "2026-11-01T12:00Z", cwd=tmp_path).returncode == 0
    out = _mloop("online", "--service", "model", "--entity", "zone_id=1,2", "--as-of", "2026-11-01T01:45-04:00",
                 cwd=tmp_path)
    got = json.loads(out.stdout)
    assert got["status"]["zone_stats"] == ["present", "after_as_of"] and got["features"]["x"] == [1.5, None]
    assert got["as_of"] == "2026-11-01T05:45:00+00:00" and got["event_times"]["zone_stats"][1] is None
    ambiguous = _mloop("online", "--service", "model", "--entity", "zone_id=2", "--as-of", "2026-11-01T01:45",
                       "--timezone", "America/New_York", cwd=tmp_path)
    assert ambiguous.returncode == 2 and "Traceback" not in ambiguous.stderr
    assert "--as-of: got '2026-11-01T01:45', which happens twice in America/New_York" in ambiguous.stderr
    bad = _mloop("online", "--service", "model", "--entity", "zone_id=2", "--as-of", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and "--as-of: got 'yesterday', expected an ISO 8601 time" in bad.stderr
