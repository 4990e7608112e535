"""A rollback while a real ``mloop serve`` answers a steady client: the alias goes back, the server reloads the
old champion, and not one request fails."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mloop.automation import apply_rules, fire_manual, tick
from mloop.config import Settings
from mloop.registry import registry_for
from tests.automation.conftest import diabetes, register
from tests.automation.test_triggers import _window
from tests.serving.conftest import serve_process


def _until(check, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.timeout(240)
def test_rollback_under_load_fails_no_request(tmp_path: Path, holdout: str) -> None:
    from sklearn.linear_model import Ridge

    from mloop.monitoring import create_monitor

    settings = Settings.load(home=str(tmp_path / "home"))  # the server's home (MLOOP_HOME)
    x, y = diabetes()
    champion = register(settings, Ridge(alpha=50.0).fit(x.head(300), y.head(300)), x)
    registry = registry_for(settings)
    registry.set_alias("eta", "champion", champion)
    winner = register(settings, Ridge(alpha=0.1).fit(x.head(300), y.head(300)), x)
    apply_rules([{"name": "retrain", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
                  "actions": [{"evaluate": {"holdout": holdout, "target": "target", "metric": "mae"}},
                              {"promote": {"alias": "champion"}}]},
                 {"name": "undo", "given": {"model": "eta"},
                  "trigger": {"kind": "metric_drop", "monitor": "eta-live", "metric": "mae"},
                  "when": "live.mae > previous.mae", "actions": [{"rollback": {"alias": "champion"}}]}],
                settings=settings)
    create_monitor("eta-live", "eta", window="1h", settings=settings)
    hour = datetime(2026, 11, 30, 0, tzinfo=UTC)
    _window(settings, hour, champion, "mae", 48.0)
    assert fire_manual("retrain", settings=settings)["ran"][0]["state"] == "done"

    row = {k: float(v) for k, v in x.iloc[0].items()}
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    r = http.post(url + "/predict", json=[row])
                    results.append((r.status_code, r.headers.get("x-model-version", "")))
                except httpx.HTTPError as exc:
                    results.append((0, repr(exc)))

    with serve_process(["models:/eta@champion", "--no-log", "--reload-seconds", "0.1"]) as (url, _proc):
        client = threading.Thread(target=load, args=(url,))
        client.start()
        try:
            _until(lambda: len(results) >= 20)
            assert results[-1][1] == str(winner)
            _window(settings, hour + timedelta(hours=1), winner, "mae", 55.0)  # worse live than the old champion
            assert tick(now=hour, settings=settings).ran[0]["state"] == "done"
            assert registry.get_alias("eta", "champion").version == champion
            _until(lambda: results[-1][1] == str(champion))
            back_at = len(results)
            _until(lambda: len(results) >= back_at + 20)
        finally:
            stop.set()
            client.join(30)
    assert {status for status, _ in results} == {200}, [r for r in results if r[0] != 200][:5]
    versions = [v for _, v in results]
    assert versions[0] == str(winner) and versions[-1] == str(champion)
