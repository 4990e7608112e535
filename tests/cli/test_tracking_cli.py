"""The CLI as a user runs it: a real process, real stores, exit codes and messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mloop
from mloop.config import Settings
from mloop.tracking import TrackingClient


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "mloop", *args], capture_output=True, text=True, timeout=120,
                            env=None)
    if check and result.returncode != 0:
        raise AssertionError(f"mloop {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


@pytest.fixture
def runs(home: Path) -> list[str]:
    client = TrackingClient(Settings.load(home=str(home)))
    ids = []
    for name, lr, rmse in (("a", 0.1, 3.0), ("b", 0.2, 2.0)):
        with client.start_run("cli", name=name, params={"lr": lr}) as run:
            run.log_metric("rmse", rmse)
        ids.append(run.run_id)
    return ids


def test_version_and_help() -> None:
    assert mloop.__version__ in cli("--version").stdout
    for verb in ("runs", "experiments", "gc", "server", "demo"):
        assert "Usage" in cli(verb, "--help").stdout


def test_runs_list_show_compare_delete_move(runs: list[str]) -> None:
    listed = cli("runs", "list", "cli", "--filter", "metrics.rmse < 2.5", "--order-by", "metrics.rmse").stdout
    assert runs[1] in listed.replace("\n", "") or "b" in listed
    assert "1 runs" in listed
    shown = cli("runs", "show", runs[0][:10]).stdout
    assert "param lr" in shown and "metric rmse" in shown
    compared = cli("runs", "compare", runs[0], runs[1]).stdout
    assert "lr" in compared and "*" in compared
    cli("experiments", "create", "elsewhere")
    cli("runs", "move", runs[0], "elsewhere")
    assert "1 runs" in cli("runs", "list", "elsewhere").stdout
    cli("runs", "delete", runs[1])
    assert "0 runs" in cli("runs", "list", "cli").stdout
    assert "purged 1 runs" in cli("gc", "--older-than", "0s").stdout


def test_bad_input_is_a_clear_error_not_a_traceback(runs: list[str]) -> None:
    bad = cli("runs", "list", "cli", "--filter", "metrics.rmse <", check=False)
    assert bad.returncode == 2
    assert "position" in bad.stderr and "Traceback" not in bad.stderr
    missing = cli("runs", "show", "0123456789abcdef0123456789abcdef", check=False)
    assert missing.returncode == 1 and "No run with id" in missing.stderr
    assert "Traceback" not in missing.stderr
    age = cli("gc", "--older-than", "soon", check=False)
    assert age.returncode == 2 and "--older-than" in age.stderr
    unknown = cli("experiments", "delete", "ghost", check=False)
    assert unknown.returncode == 1 and "ghost" in unknown.stderr
