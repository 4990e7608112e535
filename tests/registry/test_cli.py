"""``mloop models ...`` end to end over a real home folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mloop.cli import _register, app
from mloop.config import Settings
from mloop.registry import registry_for
from mloop.tracking import TrackingClient
from tests.registry.conftest import log_version


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.cli._app import console

    monkeypatch.setattr(console, "_width", 300)


@pytest.fixture
def home(tmp_path: Path, pipeline, frame) -> str:  # type: ignore[no-untyped-def]
    settings = Settings.load(home=str(tmp_path / "cli-home"))
    tracking = TrackingClient(settings)
    for mae in (3.0, 2.0):
        log_version(tracking, pipeline, frame, metrics={"mae": mae, "bias": 0.0})
    return settings.home


def _run(*args: str) -> str:
    _register()
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_models_commands(home: str, tmp_path: Path) -> None:
    assert "eta" in _run("models", "list", "--home", home)
    assert "mae" in _run("models", "versions", "eta", "--home", home)
    assert "new -> v1" in _run("models", "alias", "eta", "champion", "1", "--home", home)
    assert "eta@champion -> v1" in _run("models", "alias", "eta", "champion", "--home", home)
    _run("models", "env", "create", "production", "--requires-approval", "--home", home)
    assert "approval request 1 is pending" in _run("models", "env", "deploy", "eta", "2", "production",
                                                   "--home", home)
    assert "production" in _run("models", "approve", "--home", home)
    assert "production now runs eta v2" in _run("models", "approve", "1", "--comment", "ok", "--home", home)
    assert "alias champion" in _run("models", "show", "eta", "--home", home)
    rule = tmp_path / "rule.yaml"
    rule.write_text("name: best\nwhen: metrics.mae < 2.5\nalias: champion\nselect: metrics.mae asc\n")
    dry = _run("models", "select", str(rule), "--save", "--home", home)
    assert "selected eta v2" in dry and "eta v1: when: metrics.mae < 2.5 is false (metrics.mae=3)" in dry
    assert registry_for(Settings.load(home=home)).get_alias("eta", "champion").version == 1
    assert "alias champion: 1 -> 2" in _run("models", "select", "best", "--apply", "--home", home)
    assert "best" in _run("models", "rules", "--home", home)
    assert '"datasets"' in _run("models", "lineage", "eta", "1", "--home", home)
    audit = _run("models", "audit", "--model", "eta", "--home", home)
    assert "rule.applied" in audit and "approval.approved" in audit
    assert "deployment history" in _run("models", "env", "history", "production", "--home", home)


def test_bad_input_is_a_clear_error_not_a_traceback(home: str) -> None:
    out = subprocess.run([sys.executable, "-m", "mloop", "models", "select", "best", "--home", home],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "No stored rule named 'best'" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "mloop", "models", "alias", "eta", "champion", "9", "--home", home],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "has no version 9" in out.stderr and "Traceback" not in out.stderr
