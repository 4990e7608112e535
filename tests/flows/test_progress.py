"""``mloop flow run`` on a terminal: the live "tasks done · running · failed" line, run under a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest

# Three branches side by side; item 0 fails early when FAIL_FIRST is set while the other two still run.
FOREACH = """
import os
import time

from mloop.flows import FlowSpec, step


class Sleepy(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        if self.input == 0 and os.environ.get("FAIL_FIRST"):
            time.sleep(0.3)
            raise RuntimeError("first item broke")
        time.sleep(1.0 if os.environ.get("FAIL_FIRST") else 0.5)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"
TIMEOUT = 120


def run_in_terminal(*args: str, **env: str) -> tuple[int, str]:
    """Run ``python -m mloop ARGS`` with a pseudo-terminal as stdout and stderr; its exit code and raw output."""
    master, slave = pty.openpty()
    # Rich only animates a terminal it recognises: a real TERM, and no CI variables that force it off.
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE")}
    process = subprocess.Popen([sys.executable, "-m", "mloop", *args], stdin=subprocess.DEVNULL, stdout=slave,
                               stderr=slave, env=environ | {"TERM": "xterm", "COLUMNS": "120"} | env)
    os.close(slave)  # the child holds its copy: reading the master ends when the child's side closes
    try:
        output = _read_until_exit(master, process)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, output.decode(errors="replace")


def _read_until_exit(master: int, process: subprocess.Popen[bytes]) -> bytes:
    output = b""
    # poll, not select: a test process that has opened many files gets descriptors past select's limit (1024)
    poller = select.poll()
    poller.register(master, select.POLLIN)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        readable = poller.poll(100)
        if readable:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # Linux reports EIO once every holder of the terminal's other side has closed it
                return output
            if not chunk:
                return output
            output += chunk
        elif process.poll() is not None:  # exited and nothing left to read (a task process may keep it open)
            return output
    pytest.fail(f"mloop flow run did not end within {TIMEOUT} s; output so far: {output[-2000:]!r}")


def visible(output: str) -> str:
    return ANSI.sub("", output)


def test_a_terminal_shows_live_task_counts_and_gets_its_cursor_back(write_flow) -> None:
    flow = write_flow(FOREACH)
    code, output = run_in_terminal("flow", "run", str(flow))
    text = visible(output)
    assert code == 0, text
    # start is done and the three branches run side by side, then they finish one by one.
    assert "tasks done 1 · running 3 · failed 0" in text
    assert re.search(r"tasks done [4-9] · running \d+ · failed 0", text), text
    assert "flow finished" in text and "6 ran" in text
    # The spinner hides the cursor while it runs and must show it again.
    assert HIDE_CURSOR in output and output.rindex(SHOW_CURSOR) > output.rindex(HIDE_CURSOR)


def test_the_progress_line_counts_a_failed_task_and_the_failure_follows_it(write_flow) -> None:
    flow = write_flow(FOREACH)
    code, output = run_in_terminal("flow", "run", str(flow), FAIL_FIRST="1")
    text = visible(output)
    assert code == 1, text
    # work/0 failed while work/1 and work/2 were still running.
    assert "running 2 · failed 1" in text
    # The line is gone before the failure is printed, so the message reads whole.
    failure = text[text.index("flow failed"):]
    assert "RuntimeError: first item broke" in failure and "tasks done" not in failure
    assert output.rindex(SHOW_CURSOR) > output.rindex(HIDE_CURSOR)


def test_without_a_terminal_there_is_no_progress_line(write_flow) -> None:
    flow = write_flow(FOREACH)
    out = subprocess.run([sys.executable, "-m", "mloop", "flow", "run", str(flow)], capture_output=True, text=True,
                         timeout=TIMEOUT, env=os.environ | {"TERM": "xterm"})
    assert out.returncode == 0, out.stderr
    assert "flow finished" in out.stdout
    assert "tasks done" not in out.stdout + out.stderr and "\x1b[" not in out.stdout + out.stderr
