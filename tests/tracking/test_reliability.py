"""Concurrent writers and crashed processes: nothing locked reaches the user, nothing flushed is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mloop.config import Settings
from mloop.store.sql import open_database
from mloop.tracking import RunStatus, TrackingClient
from mloop.tracking import _tables as t

WRITER = textwrap.dedent("""
    import sys, threading
    from mloop.config import Settings
    from mloop.tracking import TrackingClient

    client = TrackingClient(Settings.load(home=sys.argv[1], db_url=sys.argv[2]))
    points, errors = int(sys.argv[3]), []

    def work(i):
        try:
            with client.start_run("concurrency", name=f"p{sys.argv[4]}-t{i}", params={"thread": i}) as run:
                for step in range(points):
                    run.log_metric("loss", step * 0.5, step=step)
                    if step % 500 == 0:
                        run.log_metric("flushing", step, step=step)
                        run.flush()
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print("ERRORS", errors)
    sys.exit(1 if errors else 0)
""")


def _count(db_url: str, key: str) -> int:
    with open_database(db_url).read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.metrics).where(t.metrics.c.key == key)).scalar())


@pytest.mark.slow
def test_two_processes_eight_threads_lose_nothing(db_url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    home, points = str(tmp_path / "h"), 2000
    procs = [subprocess.Popen([sys.executable, str(script), home, db_url, str(points), str(p)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for p in range(2)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out
        assert "locked" not in out
    assert _count(db_url, "loss") == 2 * 8 * points
    client = TrackingClient(Settings.load(home=home, db_url=db_url))
    runs = client.search_runs("concurrency")
    assert len(runs) == 16 and set(runs["status"]) == {"finished"}
    assert set(runs["metrics.loss"]) == {(points - 1) * 0.5}


CRASHER = textwrap.dedent("""
    import sys, time
    from mloop.config import Settings
    from mloop.tracking import TrackingClient

    client = TrackingClient(Settings.load(home=sys.argv[1], heartbeat_seconds=0.2))
    run = client.start_run("crash", name="doomed")
    for step in range(5000):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.flush()
    print(run.run_id, flush=True)
    while True:
        run.log_metric("after_flush", 1.0)
        time.sleep(0.001)
""")


def test_kill_9_after_flush_keeps_flushed_points_and_run_becomes_killed(tmp_path: Path) -> None:
    script = tmp_path / "crasher.py"
    script.write_text(CRASHER)
    home = str(tmp_path / "h")
    proc = subprocess.Popen([sys.executable, str(script), home], stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip() if proc.stdout else ""
    assert len(run_id) == 32, run_id
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    client = TrackingClient(Settings.load(home=home, heartbeat_timeout_seconds=1.0))
    assert len(client.metric_history(run_id, "loss")) == 5000
    time.sleep(1.5)  # past the heartbeat timeout
    run = client.get_run(run_id)
    assert run.status is RunStatus.KILLED
    assert run.end_time is not None
    # the store is healthy: new runs work
    with client.start_run("crash") as fresh:
        fresh.log_metric("ok", 1.0)
    assert client.get_run(fresh.run_id).metrics == {"ok": 1.0}


def test_normal_exit_flushes_without_end(tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    code = (f"import mloop; mloop.configure(home={home!r}); run = mloop.start_run('exit');"
            "[run.log_metric('m', float(i), step=i) for i in range(50_000)]; print(run.run_id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    client = TrackingClient(Settings.load(home=home))
    run = client.get_run(out.stdout.strip())
    assert run.status is RunStatus.FINISHED
    assert len(client.metric_history(run.run_id, "m")) == 50_000  # several INSERTs of a batch, at exit too


def test_concurrent_first_start_migrates_once(db_url: str, tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    code = "import sys; from mloop.store.sql import open_database; open_database(sys.argv[1]); print('ok')"
    url = db_url
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert TrackingClient(Settings.load(home=home, db_url=url)).list_experiments() == []
