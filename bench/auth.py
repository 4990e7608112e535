"""What authentication costs a logged metric batch over HTTP.

    python bench/auth.py [--rounds 300] [--points 1000]

Two `mloop server` processes on one SQLite store, one with ``--auth`` and one without. The tracking HTTP client
sends the same metric batch (``--points`` points, POST /api/metrics/batch, as ``mloop.log_metric`` buffers and
flushes them) into the same run through each, alternating, after a warm-up; the table shows the median time of a
batch through each and the overhead. Issue 13 asks for at most 10%. Every point is checked to be stored, and the
anonymous batch to the auth server to be refused; the command exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, LoadWatch, check, finish, fmt, wait_until_up  # noqa: E402

from mloop.auth import AuthStore  # noqa: E402
from mloop.config import Settings  # noqa: E402
from mloop.errors import AuthenticationError  # noqa: E402
from mloop.tracking import TrackingClient  # noqa: E402
from mloop.tracking._http import HttpTrackingRepository  # noqa: E402
from mloop.tracking.repository import MetricRow  # noqa: E402


def start_server(home: Path, port: int, auth: bool) -> subprocess.Popen[bytes]:
    flag = "--auth" if auth else "--no-auth"
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "server", "--home", str(home), "--port", str(port), flag],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return wait_until_up(proc, f"http://127.0.0.1:{port}")


def timed_batch(repo: HttpTrackingRepository, rows: list[MetricRow]) -> float:
    start = time.perf_counter()
    repo.log_metrics(rows)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()
    watch = LoadWatch()
    home = WORK / "auth"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings.load(home=str(home))
    store = AuthStore(settings.db_url)
    store.add_user("bench")
    store.grant("bench", "default", "editor")
    token = store.create_token("bench").text
    run = TrackingClient(settings).start_run("bench-auth")
    run_id = run.run_id
    servers = [start_server(home, 5811, auth=False), start_server(home, 5812, auth=True)]
    try:
        plain = HttpTrackingRepository("http://127.0.0.1:5811")
        os.environ["MLOOP_TOKEN"] = token
        authed = HttpTrackingRepository("http://127.0.0.1:5812")
        del os.environ["MLOOP_TOKEN"]
        try:
            HttpTrackingRepository("http://127.0.0.1:5812", retry_seconds=0).log_metrics([(run_id, "x", 1.0, 0, 0)])
            check(False, "an anonymous batch to the auth server was accepted")
        except AuthenticationError:
            pass
        times: dict[str, list[float]] = {"without auth": [], "with auth": []}
        step = 0
        for i in range(args.rounds + 20):  # the first 20 rounds warm both up and are not counted
            for name, repo in (("without auth", plain), ("with auth", authed)) if i % 2 else \
                    (("with auth", authed), ("without auth", plain)):
                rows = [(run_id, "loss", 1.0 / (step + k + 1), step + k, 1_700_000_000_000 + step + k)
                        for k in range(args.points)]
                step += args.points
                elapsed = timed_batch(repo, rows)
                if i >= 20:
                    times[name].append(elapsed)
        stored = len(TrackingClient(settings).metric_history(run_id, "loss"))
        check(stored == step, f"{stored} points stored, {step} sent")
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(30)
        run.end()
    report(times, args.points, layer_seconds(token, settings.db_url, run_id, args.points))
    finish(watch)


def layer_seconds(token: str, db_url: str, run_id: str, points: int, repeat: int = 5_000) -> float:
    """Median time the auth layer takes to pass a metric batch request (its body read for the runs' projects)
    with a cached token."""
    import asyncio

    import orjson

    from mloop.server.auth import AuthLayer

    body = orjson.dumps({"run_ids": [run_id] * points, "keys": ["loss"] * points, "values": [0.5] * points,
                         "steps": list(range(points)), "timestamps": [1_700_000_000_000] * points})

    async def inner(scope: object, receive: object, send: object) -> None:
        assert (await receive())["body"] == body  # type: ignore[operator]

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    layer = AuthLayer(inner, db_url)  # type: ignore[arg-type]
    scope = {"type": "http", "method": "POST", "path": "/api/metrics/batch",
             "headers": [(b"authorization", f"Bearer {token}".encode())]}

    async def timed() -> float:
        await layer(dict(scope), receive, None)  # type: ignore[arg-type]  # fills the caches
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeat // 5):
                await layer(dict(scope), receive, None)  # type: ignore[arg-type]
            samples.append((time.perf_counter() - start) / (repeat // 5))
        return statistics.median(samples)

    return asyncio.run(timed())


def report(times: dict[str, list[float]], points: int, layer: float) -> None:
    plain, authed = statistics.median(times["without auth"]), statistics.median(times["with auth"])
    overhead = authed / plain - 1
    print(f"\nmetric batch of {points} points over HTTP, {len(times['with auth'])} rounds each, medians")
    print(f"{'':14}{'per batch':>12}{'points/s':>14}")
    for name, value in (("without auth", plain), ("with auth", authed)):
        print(f"{name:14}{fmt(value, 's'):>12}{points / value:>14,.0f}")
    print(f"auth adds {overhead:+.1%} (goal: at most +10%)")
    print(f"the auth layer alone: {layer * 1e6:.0f} us per request, {layer / plain:.2%} of a batch")
    check(overhead <= 0.10, f"auth adds {overhead:.1%} to a metric batch, more than 10%")


if __name__ == "__main__":
    main()
