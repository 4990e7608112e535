"""The mlflow client against MLflow's own server and against ``mloop server``: log_batch and search_runs.

    python bench/mlflow_compat.py [--batches 20] [--runs 1000]

Both servers run on this machine with SQLite and one worker; the same client (the mlflow package in
bench/.venv-mlflow) runs the same calls against each (see bench/peers/mlflow_compat_client.py): log_batch of
1,000 metrics; log_batch of 800 metrics, 100 params and 100 tags; a filtered, ordered search_runs over ``--runs``
runs; paging through all of them 200 at a time. Times are medians (15 searches, 5 pagings); every answer is
checked, and the command exits 1 when one is wrong.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, LoadWatch, check, finish, fmt, peer_python, ratio, run_peer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
ROWS = [("log_batch_metrics_s", "log_batch, 1,000 metrics (median call)"),
        ("log_batch_mixed_s", "log_batch, 800 metrics + 100 params + 100 tags"),
        ("search_filtered_s", "search_runs, filtered and ordered"),
        ("search_paged_s", "search_runs, paging through all runs")]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(command: list[str], port: int, log: Path) -> Iterator[str]:
    """A server process on 127.0.0.1:``port``, ready (its /health answers) until the block ends."""
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **QUIET})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[2]} server did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20, help="log_batch calls per workload")
    parser.add_argument("--runs", type=int, default=1000, help="runs to search over")
    args = parser.parse_args()
    watch = LoadWatch()
    peer = peer_python("mlflow", ["mlflow"])
    work = WORK / "mlflow_compat"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = {}
    port = free_port()
    mlflow_cmd = [str(peer), "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                  "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}", "--artifacts-destination",
                  str(work / "mlflow-artifacts")]
    port2 = free_port()
    mloop_cmd = [sys.executable, "-m", "mloop", "server", "--port", str(port2), "--workers", "1",
                 "--home", str(work / "mloop-home"), "--db-url", f"sqlite:///{work / 'mloop.db'}"]
    for name, command, at in (("mlflow", mlflow_cmd, port), ("mloop", mloop_cmd, port2)):
        print(f"  {name} server: running the client...", flush=True)
        with server(command, at, work / f"{name}.log") as url:
            results[name] = run_peer(peer, "mlflow_compat_client.py", url, str(args.batches), str(args.runs))
        for wrong in results[name]["errors"]:
            check(False, f"{name} server: {wrong}")
    report(results, args)
    finish(watch)


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    theirs, ours = results["mlflow"], results["mloop"]
    print(f"\nmlflow client against each server (SQLite, 1 worker); {args.batches} log_batch calls, "
          f"{args.runs:,} runs searched")
    print(f"{'workload':<50} {'mlflow server':>14} {'mloop server':>14} {'mloop faster':>13}")
    for key, label in ROWS:
        print(f"{label:<50} {fmt(theirs.get(key), 's'):>14} {fmt(ours.get(key), 's'):>14} "
              f"{ratio(ours.get(key), theirs.get(key), higher_is_better=False):>13}")


if __name__ == "__main__":
    main()
