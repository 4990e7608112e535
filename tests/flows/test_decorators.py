"""@retry, @timeout, @catch, @resources, and a task process killed with kill -9."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import mloop.flows as flows
from tests.flows.conftest import wait_for_pid

RETRY = """
from mloop.flows import FlowSpec, retry, step


class Flaky(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=TIMES, backoff=0.01)
    @step
    def flaky(self):
        count("flaky")
        if len((Path(__file__).parent / "counts" / "flaky").read_text().splitlines()) < 3:
            raise ConnectionError("transient")
        self.ok = True
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_retry_runs_again_until_success(write_flow, counts) -> None:
    run = flows.run(str(write_flow(RETRY.replace("TIMES", "3"))))
    assert counts() == {"flaky": 3} and run.data.ok
    assert run["flaky"].task.attempts == 3


def test_retry_gives_up_after_its_attempts(write_flow, counts) -> None:
    with pytest.raises(flows.FlowFailedError, match="ConnectionError: transient"):
        flows.run(str(write_flow(RETRY.replace("TIMES", "1"))))
    assert counts() == {"flaky": 2}


TIMEOUT = """
import time
from mloop.flows import FlowSpec, catch, step, timeout


class Slow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow)

    CATCH
    @timeout(seconds=0.5)
    @step
    def slow(self):
        count("slow")
        time.sleep(30)
        self.next(self.end)

    @step
    def end(self):
        count("end")
"""


def test_timeout_kills_a_slow_task(write_flow, counts) -> None:
    started = time.monotonic()
    with pytest.raises(flows.FlowFailedError, match=r"TimeoutError: step 'slow' ran longer than 0.5 s"):
        flows.run(str(write_flow(TIMEOUT.replace("CATCH", ""))))
    assert time.monotonic() - started < 15
    assert flows.get("Slow").latest_run["slow"].task.status == "failed"


def test_the_logs_of_a_timed_out_task_keep_what_it_printed(write_flow, counts) -> None:
    source = TIMEOUT.replace("CATCH", "").replace("seconds=0.5", "seconds=3").replace(
        'count("slow")\n', 'count("slow")\n        print("about to hang", flush=True)\n')
    with pytest.raises(flows.FlowFailedError, match="ran longer than 3 s"):
        flows.run(str(write_flow(source)))
    task = flows.get("Slow").latest_run["slow"].task
    assert task.stdout == "about to hang\n"


def test_catch_records_the_exception_and_continues(write_flow, counts) -> None:
    run = flows.run(str(write_flow(TIMEOUT.replace("CATCH", "@catch(var='problem')"))))
    assert run.successful and counts() == {"slow": 1, "end": 1}
    assert "ran longer than 0.5 s" in run.data.problem


CAUGHT_JOIN = """
from mloop.flows import FlowSpec, Parameter, catch, step


class CaughtJoin(FlowSpec):
    size = Parameter(int, default=3)

    @step
    def start(self):
        self.shared = "on every branch"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.side = "a"
        self.next(self.join)

    @step
    def b(self):
        self.side = "b"
        self.next(self.join)

    @catch(var="problem")
    @step
    def join(self, inputs):
        raise ValueError("cannot merge")
        self.next(self.end)

    @step
    def end(self):
        count("end")
        self.seen = (self.shared, self.size, self.problem, hasattr(self, "side"))
"""


def test_a_caught_join_keeps_what_its_inputs_agree_on(write_flow, counts) -> None:
    """Like a successful join that merges nothing: artifacts equal on every input go on, differing ones do not."""
    run = flows.run(str(write_flow(CAUGHT_JOIN)))
    assert run.successful and counts() == {"end": 1}
    assert run.data.seen == ("on every branch", 3, "ValueError: cannot merge", False)


KILLED = """
import os, time
from mloop.flows import FlowSpec, resources, step


class Victim(FlowSpec):
    @step
    def start(self):
        self.next(self.work)

    @resources(cpu=1, memory=256)
    @step
    def work(self):
        (Path(__file__).parent / "pid").write_text(str(os.getpid()))
        time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_task_killed_with_sigkill_is_reported_failed(write_flow, tmp_path: Path) -> None:
    file = write_flow(KILLED)

    def killer() -> None:
        pid = wait_for_pid(tmp_path / "pid", timeout=30)
        time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=killer)
    thread.start()
    started = time.monotonic()
    with pytest.raises(flows.FlowFailedError, match=r"killed by signal 9"):
        flows.run(str(file))
    thread.join()
    assert time.monotonic() - started < 30
    run = flows.get("Victim").latest_run
    assert run.status == "failed" and run["work"].task.status == "failed"
    assert "signal 9" in run["work"].task.error
