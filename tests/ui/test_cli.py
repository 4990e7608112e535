"""The CLI and the UI: ``mloop ui`` serves the pages on 127.0.0.1 and prints where, and ``mloop runs show``
prints a run's page when it talks to a server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.ui.conftest import UiData


def test_runs_show_prints_the_run_page_of_the_server(ui_data: UiData) -> None:
    run = ui_data.runs["hgb"]
    env = {**os.environ, "MLOOP_TRACKING_URI": ui_data.url}
    shown = subprocess.run([sys.executable, "-m", "mloop", "runs", "show", run], capture_output=True, text=True,
                           timeout=120, env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"page: {ui_data.url}/runs/{run}\n" in shown.stdout


def test_mloop_ui_serves_the_pages_on_this_machine(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mloop", "ui", "--port", str(port), "--home", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/experiments", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200 and "app.js" in answer.text
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert f"mloop UI: http://127.0.0.1:{port}/" in out
