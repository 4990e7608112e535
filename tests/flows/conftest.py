"""Flows are files: tests write small ones into their temporary folder and count executions in files."""

from __future__ import annotations

import textwrap
import time
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


def wait_for_pid(pid_file: Path, timeout: float = 60) -> int:
    """The process id a task writes into pid_file, once it is there; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int(pid_file.read_text())
        except (FileNotFoundError, ValueError):  # not written yet, or caught halfway through the write
            if time.monotonic() > deadline:
                raise AssertionError(f"no process id in {pid_file} after {timeout} s") from None
            time.sleep(0.05)
