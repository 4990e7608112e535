"""``mloop flow run/resume/list/show/logs/tag`` and ``mloop scheduler --once`` as a user types them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mloop.flows as flows
from mloop.config import Settings
from mloop.flows.runtime import open_flow_repo
from mloop.flows.scheduler import scheduled_flows, tick
from tests.flows.conftest import wait_for_pid
from tests.flows.test_resume_and_cache import LOOPING, PIPELINE


def mloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mloop", *args], capture_output=True, text=True, timeout=120)


def test_run_fail_resume_show_logs_list_and_tag(write_flow, counts, tmp_path: Path) -> None:
    file = write_flow(PIPELINE)
    (tmp_path / "fail-evaluate").touch()
    out = mloop("flow", "run", str(file), "--lr", "0.5", "--tag", "exp1")
    assert out.returncode == 1, out.stderr
    assert "Step 'evaluate' failed: RuntimeError: evaluation service unavailable" in out.stderr
    assert "mloop flow resume" in out.stderr and "stderr.log" in out.stderr
    failed = flows.get("Train").latest_run
    assert failed.params == {"lr": 0.5} and failed.tags == ["exp1"]

    (tmp_path / "fail-evaluate").unlink()
    out = mloop("flow", "resume", str(file), failed.id[:10])
    assert out.returncode == 0, out.stderr
    assert "5 reused (start, train/0, train/1, train/2, join)" in out.stdout
    assert counts()["evaluate"] == 2 and counts()["train"] == 3
    resumed = flows.get("Train").latest_run

    out = mloop("flow", "show", resumed.id)
    assert out.returncode == 0 and "evaluate" in out.stdout and "finished" in out.stdout
    out = mloop("flow", "logs", failed.id, "evaluate")
    assert "RuntimeError: evaluation service unavailable" in out.stdout
    assert mloop("flow", "tag", resumed.id, "golden").returncode == 0
    out = mloop("flow", "list", "--tag", "golden")
    assert resumed.id[:12] in out.stdout and failed.id[:12] not in out.stdout
    out = mloop("flow", "run", str(file), "--lr", "fast")
    assert out.returncode == 2 and "--lr" in out.stderr and "expected a number" in out.stderr


def test_check_lists_the_parameters_a_run_accepts(write_flow) -> None:
    out = mloop("flow", "check", str(write_flow(PIPELINE)))
    assert out.returncode == 0 and "--lr  a number, default 0.1" in out.stdout, out.stderr


SCHEDULED = """
from mloop.flows import FlowSpec, schedule, step


@schedule(cron="*/5 * * * *")
class Nightly(FlowSpec):
    @step
    def start(self):
        count("start")
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_scheduler_starts_due_flows_once_per_minute_and_records_it(mode_settings, write_flow, counts) -> None:
    file = write_flow(SCHEDULED)
    out = mloop("scheduler", str(file), "--once", "--now", "2026-03-01T10:05:20")
    assert out.returncode == 0, out.stderr
    assert "started Nightly for 2026-03-01 10:05" in out.stdout
    out = mloop("scheduler", str(file), "--once", "--now", "2026-03-01T10:05:40")  # same minute: already started
    assert "started" not in out.stdout.split("\n", 1)[1]
    assert counts() == {"start": 1}
    run = flows.get("Nightly").latest_run
    assert run.tags == ["scheduled"]
    starts = open_flow_repo(flows.get("Nightly")._ctx.settings).schedule_starts("Nightly")
    assert [(s["cron"], s["run_id"]) for s in starts] == [("*/5 * * * *", run.id)]
    from datetime import UTC, datetime

    assert tick(scheduled_flows([str(file)]), datetime(2026, 3, 1, 10, 7, tzinfo=UTC),
                launch=lambda *a: None) == []  # not due at 10:07


TWO_SCHEDULED = SCHEDULED + """

@schedule(cron="5 * * * *")
class Hourly(FlowSpec):
    @step
    def start(self):
        count("hourly")
        self.next(self.end)

    @step
    def end(self):
        pass


class Manual(FlowSpec):  # no @schedule: run by hand only
    @step
    def start(self):
        count("manual")
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_the_scheduler_skips_helpers_warns_of_broken_files_and_starts_every_scheduled_flow(write_flow,
                                                                                            counts) -> None:
    file = write_flow(TWO_SCHEDULED, "flows.py")
    folder = file.parent
    (folder / "__init__.py").write_text("")
    (folder / "utils.py").write_text("def util():\n    return 1\n")
    (folder / "broken.py").write_text("import nonexistent_mod_xyz\n")
    out = mloop("scheduler", str(folder), "--once", "--now", "2026-03-01T10:05:20")
    assert out.returncode == 0, out.stderr
    assert "2 scheduled flow(s): Nightly [*/5 * * * *], Hourly [5 * * * *]" in out.stdout
    assert all(f"started {name} for 2026-03-01 10:05" in out.stdout for name in ("Nightly", "Hourly"))
    assert "skipped" in out.stderr and "broken.py" in out.stderr and "nonexistent_mod_xyz" in out.stderr
    assert counts() == {"start": 1, "hourly": 1}  # each run ran its own class
    assert all(flows.get(name).latest_run.tags == ["scheduled"] for name in ("Nightly", "Hourly"))


def test_the_printed_resume_command_works_as_printed(write_flow, counts, tmp_path: Path) -> None:
    import shlex

    file = write_flow(PIPELINE + "\n\nclass Other(Train):\n    pass\n")  # two flows: --flow is needed
    home = tmp_path / "elsewhere"
    (tmp_path / "fail-evaluate").touch()
    out = mloop("flow", "run", str(file), "--flow", "Train", "--home", str(home), "--tag", "nightly")
    assert out.returncode == 1, out.stderr
    command = next(line.split("resume: ", 1)[1] for line in out.stderr.splitlines() if "resume: " in line)
    assert "--flow Train" in command and f"--home {home}" in command
    logs = next(line.split("logs: ", 1)[1] for line in out.stderr.splitlines() if "logs: " in line)
    assert "evaluation service unavailable" in mloop(*shlex.split(logs)[1:]).stdout

    (tmp_path / "fail-evaluate").unlink()
    out = mloop(*shlex.split(command)[1:])
    assert out.returncode == 0, out.stderr
    assert counts()["evaluate"] == 2 and counts()["train"] == 3
    resumed = flows.get("Train", settings=Settings.load(home=str(home))).latest_run
    assert resumed.tags == ["nightly"]  # a resumed run keeps the tags of the run it continues

    out = mloop("flow", "resume", str(file), resumed.id, "--from", "join", "--flow", "Train", "--home", str(home))
    assert out.returncode == 0, out.stderr
    assert "4 reused (start, train/0, train/1, train/2)" in out.stdout
    assert counts()["join"] == 2 and counts()["train"] == 3


def test_the_logs_of_one_pass_of_a_loop(write_flow, tmp_path: Path) -> None:
    import shlex

    file = write_flow(LOOPING)
    (tmp_path / "fail-21").touch()
    out = mloop("flow", "run", str(file))
    assert out.returncode == 1 and "Step 'fit/1#2' failed" in out.stderr, out.stderr
    logs = next(line.split("logs: ", 1)[1] for line in out.stderr.splitlines() if "logs: " in line)
    printed = subprocess.run(logs, shell=True, capture_output=True, text=True, timeout=120,  # as a user pastes it
                             executable="/bin/bash", env={**os.environ, "PATH": f"{Path(sys.executable).parent}:"
                                                          f"{os.environ['PATH']}"})
    assert "RuntimeError: seed 21 crashed" in printed.stdout, printed.stderr
    run_id = shlex.split(logs)[3]
    assert "seed 21 crashed" not in mloop("flow", "logs", run_id, "fit/1").stdout  # the first pass went well
    out = mloop("flow", "logs", run_id, "fit/7")
    assert out.returncode != 0 and "fit/1#2" in out.stderr  # names the tasks there are


SLEEPY = """
import os
import time
from pathlib import Path

from mloop.flows import FlowSpec, step


class Sleepy(FlowSpec):
    @step
    def start(self):
        (Path(__file__).parent / "task.pid").write_text(str(os.getpid()))
        time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_ctrl_c_stops_the_run_says_so_and_leaves_no_task_behind(write_flow, tmp_path: Path) -> None:
    import os
    import signal
    import time

    file = write_flow(SLEEPY)
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "flow", "run", str(file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, process_group=0,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    task_pid = wait_for_pid(tmp_path / "task.pid")
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: to the whole foreground group, the fork server too
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert flows.get("Sleepy").latest_run.status == "killed"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(task_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"task process {task_pid} still runs after Ctrl-C")


def test_a_run_that_ignores_ctrl_c_keeps_running_through_it(write_flow, tmp_path: Path) -> None:
    """A background job of a script (or nohup) inherits SIGINT ignored: its tasks must not die of a Ctrl-C."""
    import signal

    file = write_flow(SLEEPY.replace("time.sleep(60)", "time.sleep(2)"))
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "flow", "run", str(file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, process_group=0,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    wait_for_pid(tmp_path / "task.pid")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "flow finished" in out, err
