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


def test_remaining_verbs_and_options(home: str, tmp_path: Path) -> None:
    registry = registry_for(Settings.load(home=home))
    assert '"version": 2' in _run("models", "versions", "eta", "--json", "--home", home)
    _run("models", "alias", "eta", "challenger", "2", "--home", home)
    assert "challenger=v2" in _run("models", "list", "--home", home)
    assert "deleted alias challenger" in _run("models", "alias", "eta", "challenger", "--delete", "--home", home)
    assert registry.get_model("eta").aliases == {}
    _run("models", "env", "create", "staging", "--home", home)
    _run("models", "env", "create", "production", "--requires-approval", "--home", home)
    assert "staging: eta v- -> v1" in _run("models", "env", "deploy", "eta", "1", "staging", "--home", home)
    listed = _run("models", "env", "list", "--home", home)
    assert "staging" in listed and "eta=v1" in listed and "yes" in listed
    _run("models", "env", "deploy", "eta", "2", "production", "--reason", "better", "--home", home)
    assert "rejected request 1" in _run("models", "approve", "1", "--reject", "--comment", "no", "--home", home)
    assert registry.environments.current("eta", "production") is None
    assert registry.audit(action="approval.rejected")[0].after["comment"] == "no"
    digest = registry.lineage("eta", 1)["datasets"][0]["digest"]
    by_dataset = _run("models", "lineage", "--dataset", digest[:12], "--home", home)
    assert "versions trained on" in by_dataset and by_dataset.count("eta") == 2
    assert "environment staging" in _run("models", "show", "eta", "--home", home)
    detail = _run("models", "show", "eta", "1", "--home", home)
    assert "input distance_km" in detail and "metrics.mae" in detail and "scikit-learn==" in detail
    assert "alias.deleted" in _run("models", "audit", "--action", "alias.deleted", "--limit", "5", "--home", home)


@pytest.mark.parametrize(("args", "code", "says"), [
    (["alias", "eta", "champion", "abc"], 2, "Invalid value for 'version'"),
    (["audit", "--limit", "0"], 2, "Invalid value for '--limit'"),
    (["audit", "--action", "nope"], 2, "action: got 'nope', expected one of"),
    (["alias", "eta", "bad alias", "1"], 2, "alias: got 'bad alias'"),
    (["lineage", "eta"], 2, "NAME VERSION, or --dataset DIGEST"),
    (["lineage", "--dataset", "xyz"], 2, "digest: got 'xyz'"),
    (["env", "deploy", "eta", "1", "nowhere"], 1, "No environment named 'nowhere'"),
    (["approve", "42"], 1, "No approval request 42"),
    (["select", "missing.yaml"], 1, "No rule file at 'missing.yaml'"),
    (["show", "nope"], 1, "No registered model named 'nope'"),
])
def test_cli_bad_input_names_what_was_wrong(home: str, args: list[str], code: int, says: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    returncode, stderr = _main(capsys, "models", *args, "--home", home)
    assert returncode == code, stderr
    assert says in " ".join(stderr.split())


def test_cli_rule_errors_point_at_position_and_unknown_metric(home: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: r\nwhen: metrics.mae <\nalias: champion\n")
    returncode, stderr = _main(capsys, "models", "select", str(broken), "--home", home)
    assert returncode == 2 and "position 13" in stderr and stderr.rstrip().endswith("^")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("name: r\nwhen: metrics.maee < 3\n")
    returncode, stderr = _main(capsys, "models", "select", str(unknown), "--home", home)
    assert returncode == 2 and "unknown metric 'maee'" in " ".join(stderr.split())


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``mloop ARGS`` in this process through the real entry point (its error handling included)."""
    from mloop.cli import main

    capsys.readouterr()
    old = sys.argv
    sys.argv = ["mloop", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return code, stderr
