"""The CLI (``mloop automation ...``, and its tick inside ``mloop scheduler``) and the REST API on a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from mloop.config import Settings
from tests.server.conftest import serve

RULES = """
rules:
  - name: nightly
    given: {model: eta}
    trigger: {kind: schedule, cron: "0 3 * * *"}
    actions:
      - notify: {message: nightly check}
  - name: by-hand
    given: {model: eta}
    trigger: {kind: manual}
    when: reason = 'drift seen'
    actions: [notify]
"""


def _cli(*args: str) -> str:
    import mloop.cli.automation  # noqa: F401  (attaches the verb group)
    from mloop.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_apply_list_pause_dry_run_fire_and_history(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    assert "nightly: version 1" in _cli("automation", "apply", str(tmp_path / "rules.yaml"))
    listed = json.loads(_cli("automation", "list", "--json"))
    assert [(r["name"], r["trigger"], r["paused"]) for r in listed] == [("by-hand", "manual", False),
                                                                         ("nightly", "schedule", False)]
    assert "by-hand: paused" in _cli("automation", "pause", "by-hand")
    assert "by-hand: active" in _cli("automation", "resume", "by-hand")
    assert "did not fire" in _cli("automation", "fire", "by-hand", "--payload", '{"reason": "curious"}')
    assert "done" in _cli("automation", "fire", "by-hand", "--payload", '{"reason": "drift seen"}')
    history = json.loads(_cli("automation", "firings", "--json"))
    assert len(history) == 1 and history[0]["actions"][0]["status"] == "done"
    one = json.loads(_cli("automation", "firings", "--firing", history[0]["id"], "--json"))
    assert [f["event"]["reason"] for f in one] == ["drift seen"]
    assert "notify done" in _cli("automation", "timeline", "eta")

    bad = subprocess.run([sys.executable, "-m", "mloop", "automation", "fire", "by-hand", "--payload", "[1"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "error [--payload]" in bad.stderr and "Traceback" not in bad.stderr


def test_the_scheduler_ticks_automation_beside_flows(tmp_path: Path) -> None:
    from mloop.automation import apply_rules, firings

    apply_rules(RULES, settings=Settings.load())
    # no flow files: a scheduler that runs the rules alone
    out = subprocess.run([sys.executable, "-m", "mloop", "scheduler", "--once", "--now", "2026-03-01T03:00:10"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "automation: event schedule for nightly" in out.stdout
    assert [f["rule"] for f in firings(settings=Settings.load())] == ["nightly"]


def test_rest_lists_rules_fires_by_hand_once_and_shows_the_timeline(tmp_path: Path) -> None:
    from mloop.automation import apply_rules, run_firings

    settings = Settings.load(home=str(tmp_path / "server-home"), db_url=f"sqlite:///{tmp_path / 'm.db'}")
    apply_rules(RULES, settings=settings)
    for server in serve(settings):
        with httpx.Client(base_url=server.url + "/api/automation", timeout=30) as api:
            assert [r["name"] for r in api.get("/rules").json()] == ["by-hand", "nightly"]
            body = {"payload": {"reason": "drift seen"}, "request_id": "ticket-7"}
            first = api.post("/rules/by-hand/fire", json=body)
            assert first.status_code == 202 and first.json()["recorded"]
            assert not api.post("/rules/by-hand/fire", json=body).json()["recorded"]  # a retry fires once
            assert api.post("/rules/nope/fire", json={}).status_code == 404
            refused = api.post("/rules/by-hand/fire", json={"payload": [1]})
            assert refused.status_code == 422
            assert [r["state"] for r in run_firings(settings=settings)] == ["done"]
            assert api.get("/firings", params={"model": "eta"}).json()[0]["state"] == "done"
            one = api.get("/firings", params={"firing": first.json()["firing"]}).json()
            assert [f["event"]["reason"] for f in one] == ["drift seen"]
            assert api.get("/firings", params={"firing": "x'; --"}).status_code == 422
            assert [x["what"] for x in api.get("/models/eta/timeline").json()] == ["by-hand fired on manual",
                                                                                   "notify done"]


def test_cli_dry_run_shows_what_would_fire_and_writes_nothing(tmp_path: Path) -> None:
    import pandas as pd

    from mloop.automation import firings

    pd.DataFrame({"trips": range(30)}).to_parquet(tmp_path / "landing.parquet")
    (tmp_path / "rules.yaml").write_text(f"""
rules:
  - name: on-rows
    given: {{model: eta}}
    trigger: {{kind: new_data, path: {tmp_path / 'landing.parquet'}, min_rows: 10}}
    when: data.new_rows >= 10
    actions: [notify]
  - name: on-missing
    given: {{model: eta}}
    trigger: {{kind: new_data, path: {tmp_path / 'nowhere.parquet'}}}
    actions: [notify]
""")
    _cli("automation", "apply", str(tmp_path / "rules.yaml"))
    shown = _cli("automation", "dry-run")
    assert "on-rows: WOULD FIRE: data.new_rows >= 10 is true (data.new_rows=30) -> notify" in shown
    assert "on-missing: new_data trigger: no Parquet file" in shown
    (would,) = [s for s in json.loads(_cli("automation", "dry-run", "--json")) if "key" in s]
    assert would["key"] == "new_data:on-rows:0" and not would["already_recorded"]
    assert firings(settings=Settings.load()) == []  # the dry run recorded nothing
    _cli("automation", "tick")
    assert len(firings(settings=Settings.load())) == 1
    assert "on-rows" not in _cli("automation", "dry-run")  # the watermark is 30 now: nothing new
    pd.DataFrame({"trips": range(45)}).to_parquet(tmp_path / "landing.parquet")
    assert "on-rows: WOULD FIRE: data.new_rows >= 10 is true (data.new_rows=15)" in _cli("automation", "dry-run")
