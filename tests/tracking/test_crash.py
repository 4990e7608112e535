"""Crash test: kill -9 the server again and again under several writers; every acknowledged point is
stored exactly once (nothing lost, nothing doubled)."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from mloop.store.sql import open_database
from tests.tracking.serverproc import ServerProcess

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mloop.config import Settings
    from mloop.tracking import TrackingClient

    url, home, stop, name = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    client = TrackingClient(Settings.load(home=home, tracking_uri=url))
    run = client.start_run("crash", name=name)
    print("RUN", run.run_id, flush=True)
    step = 0
    while not stop.exists():
        for _ in range(250):
            run.log_metric("x", float(step), step=step)
            step += 1
        try:
            run.flush()
            print("ACK", step, flush=True)  # every step below this one is acknowledged
        except Exception as exc:  # not acknowledged (yet): the writer keeps the points and retries them
            print("NOACK", step, repr(exc)[:300], flush=True)
    run.end()
    print("END", step, flush=True)
""")

WRITERS = 4
KILLS = 3


def _lines(path: Path) -> list[list[str]]:
    return [line.split(" ", 2) for line in path.read_text().splitlines()] if path.exists() else []


def _wait_for_runs(outputs: list[Path], procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(any(w[0] == "RUN" for w in _lines(out)) for out in outputs):
        assert time.monotonic() < deadline, [out.read_text() for out in outputs]
        assert all(p.poll() is None for p in procs), [out.read_text() for out in outputs]
        time.sleep(0.1)


def _stored_steps(db_url: str, run_id: str) -> dict[int, int]:
    with open_database(db_url).read() as conn:
        rows = conn.execute(text("SELECT step, count(*) FROM metrics WHERE run_id = :r AND key = 'x' GROUP BY step"),
                            {"r": run_id}).all()
    return {int(step): int(count) for step, count in rows}


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_kill_9_the_server_under_writers_loses_and_doubles_nothing(db_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    server = ServerProcess(tmp_path / "server", db_url)
    server.start()
    script, stop = tmp_path / "writer.py", tmp_path / "stop"
    script.write_text(WRITER)
    outputs = [tmp_path / f"writer-{i}.out" for i in range(WRITERS)]
    procs = []
    for i, out in enumerate(outputs):
        with out.open("wb") as sink:
            procs.append(subprocess.Popen([sys.executable, str(script), server.url, str(tmp_path / f"h{i}"),
                                           str(stop), f"w{i}"], stdout=sink, stderr=subprocess.STDOUT))
    try:
        _wait_for_runs(outputs, procs, timeout=60)
        rng = random.Random(11)
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 1.5))  # writers are mid-batch: some commits never get their answer
            server.kill()
            time.sleep(rng.uniform(0.0, 0.5))
            server.start()
        time.sleep(0.5)
        stop.touch()
        for proc in procs:
            proc.wait(90)
    finally:
        stop.touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        server.stop()
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out.read_text()[-3000:]
    acknowledged = 0
    for out in outputs:
        lines = _lines(out)
        run_id = next(w[1] for w in lines if w[0] == "RUN")
        acked = max((int(w[1]) for w in lines if w[0] == "ACK"), default=0)
        ended = next(int(w[1]) for w in lines if w[0] == "END")
        stored = _stored_steps(db_url, run_id)
        doubled = {step: n for step, n in stored.items() if n > 1}
        assert not doubled, f"{len(doubled)} points stored more than once, e.g. {list(doubled.items())[:5]}"
        missing = set(range(acked)) - stored.keys()
        assert not missing, f"{len(missing)} acknowledged points lost, e.g. {sorted(missing)[:5]}"
        assert set(stored) == set(range(ended))  # end() flushed the rest: every logged point, once
        acknowledged += acked
    assert acknowledged > 0
    print(f"{WRITERS} writers, {KILLS} kills, {acknowledged} acknowledged points, "
          f"{time.monotonic() - started:.1f} s")
