"""A flow file that does not import is the user's error: where, what, and the user's own frames, never "a bug"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mloop.flows as flows
from mloop.flows.graph import FlowDefinitionError
from mloop.flows.task import execute
from tests.flows.test_cli import mloop

FLOW = """
from mloop.flows import FlowSpec, step
{extra}

class Broken(FlowSpec){colon}
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""

HELPER = '''
def load_settings():
    raise RuntimeError("boom at import")


SETTINGS = load_settings()
'''


def line_of(file: Path, text: str) -> int:
    return next(i for i, line in enumerate(file.read_text().splitlines(), 1) if text in line)


def assert_users_error(err: str, headline: str) -> None:
    """A user error naming what failed and where, with no frame of mloop or importlib."""
    assert "error [flow file]: could not import" in err and headline in err, err
    assert "internal error" not in err and "bug in mloop" not in err
    assert "importlib" not in err and "mloop/flows" not in err


@pytest.mark.parametrize("verb", ["run", "check", "resume"])
def test_a_syntax_error_names_the_line(write_flow, verb: str) -> None:
    file = write_flow(FLOW.format(extra="", colon=""))
    out = mloop("flow", verb, str(file))
    assert out.returncode == 2
    assert_users_error(out.stderr, f"SyntaxError: expected ':' (flow.py:{line_of(file, 'class Broken')})")
    assert "class Broken(FlowSpec)" in out.stderr  # the line itself, as Python shows it


def test_a_missing_module_shows_the_import_line_and_its_frame(write_flow) -> None:
    file = write_flow(FLOW.format(extra="import nonexistent_mod_xyz", colon=":"))
    out = mloop("flow", "run", str(file))
    line = line_of(file, "import nonexistent_mod_xyz")
    assert out.returncode == 2
    assert_users_error(out.stderr, f"ModuleNotFoundError: No module named 'nonexistent_mod_xyz' (flow.py:{line})")
    assert f'flow.py", line {line}, in <module>' in out.stderr


def test_an_error_raised_in_a_module_beside_the_flow_points_into_it(write_flow, tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text(HELPER)
    file = write_flow(FLOW.format(extra="import helper", colon=":"))
    out = mloop("flow", "check", str(file))
    raised = line_of(tmp_path / "helper.py", "raise RuntimeError")
    assert out.returncode == 2
    assert_users_error(out.stderr, f"RuntimeError: boom at import (helper.py:{raised})")
    for frame in (f'flow.py", line {line_of(file, "import helper")}, in <module>',
                  f'helper.py", line {line_of(tmp_path / "helper.py", "SETTINGS =")}, in <module>',
                  f'helper.py", line {raised}, in load_settings'):
        assert frame in out.stderr


def test_a_file_that_is_not_python_is_refused_as_such(tmp_path: Path) -> None:
    (tmp_path / "notpy.txt").write_text("hello\n")
    out = mloop("flow", "check", str(tmp_path / "notpy.txt"))
    assert out.returncode == 2 and "error [flow file]" in out.stderr and ".py file" in out.stderr, out.stderr


def test_from_python_run_raises_the_same_error_and_a_fixed_file_then_runs(write_flow) -> None:
    file = write_flow(FLOW.format(extra="import nonexistent_mod_xyz", colon=":"))
    with pytest.raises(FlowDefinitionError, match=r"No module named 'nonexistent_mod_xyz' \(flow.py:\d+\)"):
        flows.run(str(file))
    file.write_text(FLOW.format(extra="", colon=":"))  # not cached: the fixed file imports afresh
    assert flows.run(str(file)).status == "finished"


def test_the_task_processes_report_it_without_a_traceback_of_their_own(write_flow, tmp_path: Path) -> None:
    file = write_flow(FLOW.format(extra="import nonexistent_mod_xyz", colon=":"))
    server = subprocess.run([sys.executable, "-m", "mloop.flows.executors._zygote", str(file), "Broken"],
                            capture_output=True, text=True, timeout=60)
    assert (server.returncode, server.stderr) == (3, "")  # the orchestrator reports it, once
    result = execute({"artifact_root": str(tmp_path / "artifacts"), "flow_file": str(file), "flow_class": "Broken",
                      "step": "start", "inputs": [], "task_id": "start/0", "home": str(tmp_path / "home")})
    assert not result["ok"] and result["error"].startswith("FlowDefinitionError: could not import")


def test_mloops_own_checks_at_import_say_where(write_flow) -> None:
    file = write_flow(FLOW.format(extra="from mloop.flows import retry\nBAD = retry(times=-1)", colon=":"))
    with pytest.raises(FlowDefinitionError) as info:
        flows.run(str(file))
    assert str(info.value).startswith(f"flow.py:{line_of(file, 'BAD = retry')}: retry.times: got -1")
    assert info.value.field == "retry.times"


def test_a_task_run_in_process_leaves_no_flow_behind(write_flow, tmp_path: Path) -> None:
    """A task executed in this process once left its stores in os.environ and its task id in ``current``: a
    training set built later recorded itself on that task's run ("No run with id 'start/0'")."""
    import os

    from mloop.flows._current import current

    before = {k: v for k, v in os.environ.items() if k.startswith("MLOOP_")}
    file = write_flow(FLOW.format(extra="", colon=":"))
    result = execute({"artifact_root": str(tmp_path / "artifacts"), "flow_file": str(file), "flow_class": "Broken",
                      "step": "start", "inputs": [], "task_id": "start/0", "home": str(tmp_path / "elsewhere")})
    assert result["ok"], result
    assert {k: v for k, v in os.environ.items() if k.startswith("MLOOP_")} == before
    assert current.task_id is None and current.task_run() is None
