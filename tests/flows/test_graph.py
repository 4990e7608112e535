"""The graph is checked before anything runs; each error names the step and its file:line."""

from __future__ import annotations

import pytest

import mloop.flows as flows
from mloop.flows.graph import FlowDefinitionError

HEADER = "from mloop.flows import FlowSpec, step\n\n\nclass Bad(FlowSpec):\n"


def _line(source: str, needle: str) -> int:
    from tests.flows.conftest import COUNTER

    text = COUNTER + source
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


CASES = {
    "unknown step": ("""
    @step
    def start(self):
        self.next(self.trian)

    @step
    def end(self):
        pass
""", "self.next(self.trian)", "unknown step 'trian'"),
    "no next": ("""
    @step
    def start(self):
        self.x = 1

    @step
    def end(self):
        pass
""", "def start", "has no self.next"),
    "unreachable": ("""
    @step
    def start(self):
        self.next(self.end)

    @step
    def orphan(self):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def orphan", "unreachable"),
    "join without branch": ("""
    @step
    def start(self):
        self.next(self.merge)

    @step
    def merge(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def merge", "join (it takes inputs) but no branch"),
    "fan-in without join": ("""
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.c)

    @step
    def b(self):
        self.next(self.c)

    @step
    def c(self):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def c(self", "receives several branches"),
    "no end": ("""
    @step
    def start(self):
        self.next(self.start2)

    @step
    def start2(self):
        pass
""", None, "no 'end' step"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_errors_name_step_and_line(write_flow, case) -> None:
    body, needle, expected = CASES[case]
    source = HEADER + body.replace("\n    ", "\n    ")
    file = write_flow(source)
    with pytest.raises(FlowDefinitionError) as info:
        flows.run(str(file))
    message = str(info.value)
    assert expected in message
    if needle is not None:
        assert f"flow.py:{_line(source, needle)}:" in message, message


def test_check_command_prints_the_graph(write_flow, tmp_path) -> None:
    import subprocess
    import sys

    file = write_flow(HEADER + CASES["unknown step"][0])
    out = subprocess.run([sys.executable, "-m", "mloop", "flow", "check", str(file)], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown step 'trian'" in out.stderr
