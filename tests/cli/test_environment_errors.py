"""Errors that come from the machine (a path that cannot be a folder, a full disk, a service that is down) are
the user's to fix: the CLI says so, without a traceback and without calling them a bug in mloop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_home_that_cannot_be_a_folder_is_not_called_a_bug(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "a-file" / "home"))
    result = subprocess.run([sys.executable, "-m", "mloop", "runs", "list", "eta"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result
    assert "bug in mloop" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "a-file" in result.stderr and "permissions" in result.stderr, result.stderr
