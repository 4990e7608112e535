"""Flows are files: tests write small ones into their temporary folder and count executions in files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

COUNTER = '''
import os
from pathlib import Path


def count(step):
    """Append one line per execution to counts/<step> (next to the flow file)."""
    folder = Path(__file__).parent / "counts"
    folder.mkdir(exist_ok=True)
    with open(folder / step, "a") as f:
        f.write("x\\n")
'''


@pytest.fixture
def write_flow(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(source: str, name: str = "flow.py") -> Path:
        path = tmp_path / name
        path.write_text(COUNTER + textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def counts(tmp_path: Path) -> Callable[[], dict[str, int]]:
    def read() -> dict[str, int]:
        folder = tmp_path / "counts"
        if not folder.exists():
            return {}
        return {p.name: len(p.read_text().splitlines()) for p in folder.iterdir()}

    return read
