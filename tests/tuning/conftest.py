"""Tuning tests: objectives live in a module written to the test's folder, so worker processes import them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("optuna")

OBJECTIVES = '''
import time

def quadratic(trial):
    """(x - 2)^2 + a small cost per choice; a short sleep so a study takes a moment."""
    time.sleep(trial.params.get("sleep", 0.0))
    return (trial.params["x"] - 2) ** 2 + {"a": 0.0, "b": 1.0}[trial.params["kind"]]


def planted(trial):
    """Trials with x < 0 are bad from their first step on: a pruner must stop them early."""
    x = trial.params["x"]
    for step in range(10):
        trial.report(100.0 - step if x < 0 else abs(x - 2) + 1.0 / (step + 1), step)
    return abs(x - 2)
'''

SPACE = {"x": ("float", -10.0, 10.0), "kind": ["a", "b"]}


@pytest.fixture
def objectives(tmp_path: Path) -> Iterator[object]:
    """The module of objectives above, importable here and in subprocesses (the test's folder is the cwd)."""
    (tmp_path / "objectives.py").write_text(OBJECTIVES)
    sys.path.insert(0, str(tmp_path))
    import importlib

    module = importlib.import_module("objectives")
    yield module
    sys.path.remove(str(tmp_path))
    sys.modules.pop("objectives", None)
