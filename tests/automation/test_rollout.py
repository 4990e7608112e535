"""The shadow and canary actions against a real ``mloop serve`` process answering a steady client over HTTP:
the challenger is shadowed (its answers logged beside the champion's), then canaried and promoted, or rolled
back, while every request is answered 200; a runtime killed with SIGKILL mid-canary is resumed by another that
watches the same window and promotes once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from mloop.automation import apply_rules, fire_manual, firings, run_firings
from mloop.automation._tables import actions
from mloop.config import Settings
from mloop.registry import registry_for
from mloop.serving import read_predictions
from mloop.serving.rollout import CANARY_TAG, SHADOW_TAG
from mloop.store.sql import open_database
from tests.automation.conftest import champion_and_challenger, diabetes
from tests.serving.conftest import serve_process


def _until(check, seconds: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextmanager
def _steady_client(url: str, label: bool = True) -> Iterator[list[tuple[int, str]]]:
    """One client sending the diabetes rows one request at a time, labelling each answer with the truth (unless
    ``label`` is off)."""
    x, y = diabetes()
    rows = [{k: float(v) for k, v in r.items()} for r in x.to_dict(orient="records")]
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                try:
                    r = http.post("/predict", json=[rows[i % len(rows)]])
                    seen.append((r.status_code, r.headers.get("x-model-version", "")))
                    if r.status_code == 200 and label:
                        http.post("/feedback", json={"feedback": [{"id": r.json()["ids"][0],
                                                                   "label": float(y.iloc[i % len(rows)])}]})
                except httpx.HTTPError as exc:
                    seen.append((0, repr(exc)))
                i += 1

    thread = threading.Thread(target=send)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(30)


@pytest.mark.timeout(300)
def test_shadow_then_canary_promotes_while_every_request_is_answered(tmp_path: Path) -> None:
    settings = Settings.load(home=str(tmp_path / "home"))  # the server's home (MLOOP_HOME)
    champion, challenger = champion_and_challenger(settings)
    apply_rules([{"name": "rollout", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"shadow": {"requests": 25, "max_error_rate": 0.2, "timeout": "90s"}},
                              {"canary": {"percent": 50, "requests": 25, "timeout": "90s", "metric": "mae",
                                          "min_labels": 5, "max_error_rate": 0.0}},
                              {"notify": {"message": "eta rolled out"}}]}], settings=settings)
    with serve_process(["models:/eta@champion", "--reload-seconds", "0.1"]) as (url, _proc), \
            _steady_client(url) as seen:
        _until(lambda: len(seen) >= 10)
        result = fire_manual("rollout", settings=settings)
        assert result["ran"][0]["state"] == "done", result
        _until(lambda: seen[-1][1] == str(challenger))  # the server reloaded the promoted champion
        count = len(seen)
        _until(lambda: len(seen) >= count + 10)
    assert [s for s, _ in seen if s != 200] == []  # not one request failed across shadow, canary and promotion
    versions = {v for _, v in seen}
    assert versions == {str(champion), str(challenger)}

    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == challenger
    assert SHADOW_TAG not in registry.get_model("eta").tags and CANARY_TAG not in registry.get_model("eta").tags
    (firing,) = firings(settings=settings)
    shadow, canary, notify = (a["result"] for a in firing["actions"])
    assert shadow["challenger_version"] == challenger and shadow["requests"] >= 25
    assert 0 <= shadow["agreement"] < 1 and shadow["latency_ms"]["challenger_p50"] is not None
    assert canary["from"] == champion and canary["to"] == challenger
    assert canary["challenger"]["requests"] >= 25 and canary["champion"]["requests"] > 0
    assert canary["challenger"]["labelled"] >= 5 and canary["challenger"]["mae"] < canary["champion"]["mae"]
    assert notify["message"] == "eta rolled out"
    log = read_predictions(settings, "eta")
    assert set(log["role"]) >= {"primary", "shadow", "canary"}
    assert set(log[log["role"] == "shadow"]["version"]) == {str(challenger)}


@pytest.mark.timeout(300)
def test_a_worse_canary_is_rolled_back_and_says_why(tmp_path: Path) -> None:
    settings = Settings.load(home=str(tmp_path / "home"))
    champion, challenger = champion_and_challenger(settings, better=False)
    apply_rules([{"name": "rollout", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"canary": {"percent": 50, "requests": 20, "timeout": "90s", "metric": "mae",
                                          "min_labels": 5}}, "notify"]}], settings=settings)
    with serve_process(["models:/eta@champion", "--reload-seconds", "0.1"]) as (url, _proc), \
            _steady_client(url) as seen:
        _until(lambda: len(seen) >= 10)
        result = fire_manual("rollout", settings=settings)
        count = len(seen)
        _until(lambda: len(seen) >= count + 20 and seen[-1][1] == str(champion))
    assert result["ran"][0]["state"] == "stopped"
    assert "rolled back, not promoted" in result["ran"][0]["reason"] and "mae" in result["ran"][0]["reason"]
    assert [s for s, _ in seen if s != 200] == []
    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == champion
    assert CANARY_TAG not in registry.get_model("eta").tags
    (firing,) = firings(settings=settings)
    assert firing["actions"][0]["status"] == "stopped" and firing["actions"][1]["status"] == "pending"
    assert firing["actions"][0]["result"]["challenger"]["mae"] > firing["actions"][0]["result"]["champion"]["mae"]


@pytest.mark.timeout(300)
def test_a_canary_whose_metric_gets_no_labels_is_never_promoted(tmp_path: Path) -> None:
    settings = Settings.load(home=str(tmp_path / "home"))
    champion, challenger = champion_and_challenger(settings)  # better, but nobody can tell without labels
    apply_rules([{"name": "rollout", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"canary": {"percent": 50, "requests": 10, "timeout": "8s", "metric": "mae",
                                          "min_labels": 5}}]}], settings=settings)
    with serve_process(["models:/eta@champion", "--reload-seconds", "0.1"]) as (url, _proc), \
            _steady_client(url, label=False) as seen:
        _until(lambda: len(seen) >= 10)
        result = fire_manual("rollout", settings=settings)
        count = len(seen)
        _until(lambda: len(seen) >= count + 20 and seen[-1][1] == str(champion))
    (ran,) = result["ran"]
    assert ran["state"] == "stopped"
    assert "rolled back, not promoted" in ran["reason"] and "0 on the challenger's arm" in ran["reason"]
    assert "labelled predictions" in ran["reason"] and "mae" in ran["reason"]
    assert [s for s, _ in seen if s != 200] == []
    assert any(v == str(challenger) for _, v in seen[:count + 20])  # it did answer its share meanwhile
    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == champion
    assert CANARY_TAG not in registry.get_model("eta").tags


ACTIONS = {"canary": [{"canary": {"percent": 40, "duration": "8s", "timeout": "90s"}}],
           "shadow": [{"shadow": {"duration": "8s", "timeout": "90s"}}, {"promote": {"alias": "champion"}}]}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["canary", "shadow"])
def test_kill_9_mid_rollout_resumes_the_same_window_and_promotes_once(tmp_path: Path, kind: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOOP_AUTOMATION_LEASE_SECONDS", "1")
    settings = Settings.load(home=str(tmp_path / "home"))
    champion, challenger = champion_and_challenger(settings)
    apply_rules([{"name": "rollout", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": ACTIONS[kind]}], settings=settings)
    fire_manual("rollout", run=False, settings=settings)
    with serve_process(["models:/eta@champion", "--reload-seconds", "0.1"]) as (url, _proc), \
            _steady_client(url) as seen:
        runtime = subprocess.Popen([sys.executable, "-m", "mloop", "automation", "tick"], start_new_session=True)
        if kind == "canary":
            _until(lambda: any(v == str(challenger) for _, v in seen[-20:]))  # the canary answers its share
        else:
            _until(lambda: (httpx.get(url + "/models").json()["models"][0]["shadow"] or {}).get("version")
                   == str(challenger))  # the server copies the traffic to the shadow
        (firing,) = firings(settings=settings)
        assert firing["actions"][0]["status"] == "running"
        os.killpg(runtime.pid, signal.SIGKILL)
        runtime.wait()
        killed_at = int(time.time() * 1000)
        assert registry_for(settings).get_alias("eta", "champion").version == champion
        time.sleep(1.1)  # the dead runtime's lease expires
        (ran,) = run_firings(settings=settings)
        assert ran["state"] == "done", ran
        _until(lambda: seen[-1][1] == str(challenger))
    assert [s for s, _ in seen if s != 200] == []
    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == challenger
    moves = [e for e in registry.audit("eta", action="alias.set") if e.after == {"version": challenger}]
    assert len(moves) == 1  # promoted once
    assert SHADOW_TAG not in registry.get_model("eta").tags and CANARY_TAG not in registry.get_model("eta").tags
    # the second runtime watched the window the first began (recorded before the servers were asked)
    with open_database(settings.db_url).read() as conn:
        external = conn.execute(select(actions.c.external_id).where(actions.c.position == 0)).scalar_one()
    recorded, version, since = external.split(":")
    assert (recorded, int(version)) == (kind, challenger) and int(since) < killed_at
    assert run_firings(settings=settings) == []


@pytest.mark.parametrize("kind", ["shadow", "canary"])
def test_a_window_no_request_reached_is_never_a_pass(settings: Settings, kind: str) -> None:
    champion, challenger = champion_and_challenger(settings)
    spec = {"duration": "1s", **({"percent": 10} if kind == "canary" else {})}
    apply_rules([{"name": "quiet", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{kind: spec}, {"promote": {"alias": "champion"}}]}], settings=settings)
    (ran,) = fire_manual("quiet", settings=settings)["ran"]  # no server follows the rollout: no traffic at all
    assert ran["state"] == "stopped" and "no request reached it" in ran["reason"]
    registry = registry_for(settings)
    assert registry.get_alias("eta", "champion").version == champion
    assert SHADOW_TAG not in registry.get_model("eta").tags and CANARY_TAG not in registry.get_model("eta").tags
