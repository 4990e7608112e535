"""Tracking benchmark: mloop (SQLite, PostgreSQL, through mloop server) against MLflow on SQLite.

    python bench/tracking.py [--runs 10000] [--listing 1000] [--skip-peer]

Workloads: per-call ``log_metric``; 1,000,000 points logged and durable; listing
1,000 runs into a DataFrame; a filtered, ordered search over 10,000 runs (5 params,
3 metrics each). MLflow runs in its own virtualenv (bench/.venv-mlflow).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, fmt, median_time, peer_python, ratio, run_peer  # noqa: E402

from mloop.config import Settings  # noqa: E402
from mloop.tracking import TrackingClient  # noqa: E402

POSTGRES = os.environ.get("MLOOP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FILTER = "metrics.m0 < 0.5 and params.p0 = 3"


def per_call(client: TrackingClient, n: int = 300_000) -> tuple[float, float]:
    """(calls per second, points durable per second including the flush)."""
    with client.start_run("bench-calls", capture_environment=False) as run:
        log = run.log_metric
        start = time.perf_counter()
        for i in range(n):
            log("loss", 0.5, i)
        calls = time.perf_counter() - start
        run.flush()
        durable = time.perf_counter() - start
    return n / calls, n / durable


def bulk(client: TrackingClient, n: int = 1_000_000) -> float:
    """Seconds to log ``n`` points and make them durable."""
    with client.start_run("bench-bulk", capture_environment=False) as run:
        log = run.log_metric
        start = time.perf_counter()
        for i in range(n):
            log("loss", 0.5, i)
        run.flush()
        return time.perf_counter() - start


def populate(client: TrackingClient, experiment: str, runs: int) -> None:
    now = int(time.time() * 1000)
    exp = client.get_or_create_experiment(experiment).experiment_id
    rows = []
    for r in range(runs):
        run = client.repo.create_run(exp, None, "bench", {}, None, "")
        client.repo.log_params(run.run_id, {f"p{j}": (r + j) % 10 for j in range(5)})
        rows += [(run.run_id, f"m{j}", ((r * 7 + j) % 100) / 100, 0, now) for j in range(3)]
        client.repo.end_run(run.run_id, "finished")
    client.repo.log_metrics(rows)


def measure(label: str, client: TrackingClient, runs: int, listing: int, heavy: bool) -> dict[str, float]:
    print(f"  {label}: logging...", flush=True)
    result: dict[str, float] = {}
    result["per_call_pts_s"], result["per_call_durable_pts_s"] = per_call(client)
    if heavy:
        result["bulk_1m_s"] = bulk(client)
    for name, count in (("bench-search", runs), ("bench-list", listing)):
        if not client.repo.get_experiment_by_name(name):
            print(f"  {label}: creating {count:,} runs in {name}...", flush=True)
            populate(client, name, count)
    result["search_s"] = median_time(lambda: client.search_runs(
        "bench-search", filter=FILTER, order_by="metrics.m1", limit=100))
    result["search_all_s"] = median_time(lambda: client.search_runs("bench-search", filter=FILTER,
                                                                    order_by="metrics.m1"))
    result["list_s"] = median_time(lambda: client.search_runs("bench-list", limit=listing))
    assert len(client.search_runs("bench-list", limit=listing)) == listing
    return result


def serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    from tests.conftest import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "server", "--home", str(home), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/health", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("mloop server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="runs for the filtered search")
    parser.add_argument("--listing", type=int, default=1_000, help="runs for the full listing")
    parser.add_argument("--skip-peer", action="store_true", help="do not run MLflow")
    args = parser.parse_args()
    shutil.rmtree(WORK / "tracking", ignore_errors=True)
    home = WORK / "tracking" / "sqlite"
    results: dict[str, dict[str, float]] = {}

    sqlite = TrackingClient(Settings.load(home=str(home)))
    results["mloop sqlite"] = measure("mloop sqlite", sqlite, args.runs, args.listing, heavy=True)
    try:
        import sqlalchemy as sa

        schema = f"bench_{int(time.time())}"
        admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        pg = TrackingClient(Settings.load(home=str(WORK / "tracking" / "pg"),
                                          db_url=f"{POSTGRES}?options=-csearch_path%3D{schema}"))
        try:
            results["mloop postgres"] = measure("mloop postgres", pg, args.runs, args.listing, heavy=True)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    except Exception as exc:  # PostgreSQL not running: report without it
        print(f"  PostgreSQL skipped: {exc}")
    proc, url = serve(home)
    try:
        remote = TrackingClient(Settings.load(home=str(WORK / "tracking" / "client"), tracking_uri=url))
        results["mloop via server"] = measure("mloop via server", remote, args.runs, args.listing, heavy=False)
    finally:
        proc.terminate()
        proc.wait(10)
    peer: dict[str, float] = {}
    if not args.skip_peer:
        print("  mlflow sqlite...", flush=True)
        peer = run_peer(peer_python("mlflow", ["mlflow"]), "mlflow_tracking.py", str(args.listing))
        results[f"mlflow {peer.pop('version')} sqlite"] = peer
    report(results, peer, args)


def report(results: dict[str, dict[str, float]], peer: dict[str, float], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = [("per-call log_metric (calls/s)", "per_call_pts_s", "pts/s", True),
            ("per-call log_metric, durable (pts/s)", "per_call_durable_pts_s", "pts/s", True),
            ("1,000,000 points logged + durable", "bulk_1m_s", "s", False),
            (f"search {args.runs:,} runs, filter+order, limit 100", "search_s", "s", False),
            (f"search {args.runs:,} runs, filter+order, all matches", "search_all_s", "s", False),
            (f"list {args.listing:,} runs into a DataFrame", "list_s", "s", False)]
    if peer.get("bulk_pts_s"):
        peer["bulk_1m_s"] = 1_000_000 / peer["bulk_pts_s"]
        peer["per_call_durable_pts_s"] = peer["per_call_pts_s"]
    table = Table(title="Tracking: mloop vs MLflow (medians; ratio = mloop sqlite vs mlflow)")
    table.add_column("workload")
    for name in results:
        table.add_column(name, justify="right")
    table.add_column("ratio", justify="right")
    ours = results["mloop sqlite"]
    for label, key, unit, higher in rows:
        table.add_row(label, *(fmt(r.get(key), unit) for r in results.values()),
                      ratio(ours.get(key), peer.get(key), higher))
    Console(width=200).print(table)
    if peer.get("bulk_pts_s"):
        print("MLflow's 1M figure is extrapolated from 100,000 points written with log_batch (1,000 per call);"
              " its search uses the same filter on the listing experiment (1,000 runs).")


if __name__ == "__main__":
    main()
