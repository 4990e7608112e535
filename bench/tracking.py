"""Tracking benchmark: mloop (SQLite, PostgreSQL, through mloop server) against MLflow on SQLite.

    python bench/tracking.py [--calls 200000] [--runs 1000] [--search-runs 2000] [--listing 1000] [--skip-peer]

Workloads, through the module-level API as users call it (``mloop.log_metric``, ``mlflow.log_metric``),
with varying values and each library's default environment capture:

- per-call ``log_metric``: the rate calls return at, and the rate until the points are durable (end_run);
- 150 ``log_param``/``set_tag`` calls: the time they take, and the time until durable (end_run);
- creating runs (``start_run``, one param, one metric, end): runs per second;
- 1,000,000 points logged and durable (MLflow: log_batch of 1,000 points a call, extrapolated from 100,000);
- a filtered, ordered search over ``--search-runs`` runs, and ``--listing`` runs into a DataFrame.

Both sides get the same run counts. Every answer is checked (stored counts and values, search results and
their order); the command exits 1 when one is wrong. MLflow runs in its own virtualenv (bench/.venv-mlflow).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, fmt, median_time, peer_python, ratio, run_peer  # noqa: E402

import mloop  # noqa: E402
from mloop.tracking import TrackingClient  # noqa: E402

POSTGRES = os.environ.get("MLOOP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# quoted as MLflow requires; mloop compares a quoted value with the param's text, as MLflow does
FILTER = "metrics.m0 < 0.5 and params.p0 = '3'"
errors: list[str] = []


def check(ok: bool, what: str) -> None:
    if not ok:
        errors.append(what)
        print(f"  WRONG: {what}", flush=True)


def per_call(client: TrackingClient, n: int) -> tuple[float, float]:
    """(calls per second, points durable per second including end_run), values varying."""
    run = mloop.start_run(experiment="bench-calls")
    log = mloop.log_metric
    start = time.perf_counter()
    for i in range(n):
        log("loss", 1.0 / (i + 1), step=i)
    calls = time.perf_counter() - start
    mloop.end_run()
    durable = time.perf_counter() - start
    points = client.metric_history(run.run_id, "loss")
    check(len(points) == n and math.isclose(sum(p.value for p in points), sum(1.0 / (i + 1) for i in range(n))),
          f"per-call: {len(points)} points stored, expected {n} with their values")
    return n / calls, n / durable


def params_tags(client: TrackingClient, n: int) -> tuple[float, float]:
    """(seconds for ``n`` log_param/set_tag calls, seconds until they are durable)."""
    run = mloop.start_run(experiment="bench-params")
    start = time.perf_counter()
    for i in range(n // 2):
        mloop.log_param(f"p{i}", i)
        mloop.set_tag(f"t{i}", f"v{i}")
    calls = time.perf_counter() - start
    mloop.end_run()
    durable = time.perf_counter() - start
    stored = client.get_run(run.run_id)
    check(len(stored.params) == n // 2 and stored.params.get("p1") == 1 and stored.tags.get("t2") == "v2",
          f"params/tags: {len(stored.params)} params stored, expected {n // 2}")
    return calls, durable


def run_creation(client: TrackingClient, runs: int) -> float:
    start = time.perf_counter()
    for i in range(runs):
        with mloop.start_run(experiment="bench-creation"):
            mloop.log_param("i", i)
            mloop.log_metric("score", i / runs)
    rate = runs / (time.perf_counter() - start)
    found = client.search_runs("bench-creation")
    check(len(found) == runs and set(found["params.i"]) == set(range(runs)),
          f"run creation: {len(found)} runs found, expected {runs}")
    return rate


def bulk(client: TrackingClient, n: int = 1_000_000) -> float:
    """Seconds to log ``n`` points and make them durable."""
    run = mloop.start_run(experiment="bench-bulk")
    log = mloop.log_metric
    start = time.perf_counter()
    for i in range(n):
        log("loss", i * 0.5, i)
    mloop.end_run()
    elapsed = time.perf_counter() - start
    last = client.get_run(run.run_id).metrics.get("loss")
    points = client.metric_history(run.run_id, "loss", max_points=4)  # first, last and the extremes
    check(last == (n - 1) * 0.5 and points[-1].step == n - 1, f"1M points: latest {last}, expected {(n - 1) * 0.5}")
    return elapsed


def populate(client: TrackingClient, experiment: str, runs: int) -> None:
    now = int(time.time() * 1000)
    exp = client.get_or_create_experiment(experiment).experiment_id
    rows = []
    for r in range(runs):
        run = client.repo.create_run(exp, None, "bench", {}, None, "")
        client.repo.log_params(run.run_id, {f"p{j}": (r + j) % 10 for j in range(5)})
        rows += [(run.run_id, f"m{j}", ((r * 7 + j) % 100) / 100, 0, now) for j in range(3)]
        if len(rows) >= 30_000:
            client.repo.log_metrics(rows)
            rows = []
    client.repo.log_metrics(rows)
    for run_id in client.search_runs(experiment)["run_id"]:
        client.repo.end_run(run_id, "finished")


def measure(label: str, settings: dict[str, Any], args: argparse.Namespace, heavy: bool) -> dict[str, float]:
    client = mloop.configure(**settings)
    result: dict[str, float] = {}
    load = [os.getloadavg()[0]]
    print(f"  {label}: logging...", flush=True)
    with mloop.start_run(experiment="warm-up"):  # first-use costs (schema, imports) are not the workload's
        mloop.log_metric("x", 1.0)
    result["per_call_pts_s"], result["per_call_durable_pts_s"] = per_call(client, args.calls if heavy else 20_000)
    result["params_tags_s"], result["params_tags_durable_s"] = params_tags(client, 150)
    print(f"  {label}: creating runs...", flush=True)
    result["runs_per_s"] = run_creation(client, args.runs)
    if heavy:
        result["bulk_1m_s"] = bulk(client)
    load.append(os.getloadavg()[0])
    for name, count in (("bench-search", args.search_runs), ("bench-list", args.listing)):
        print(f"  {label}: creating {count:,} runs in {name}...", flush=True)
        populate(client, name, count)

    def search(limit: int | None) -> Any:
        return client.search_runs("bench-search", filter=FILTER, order_by="metrics.m1", limit=limit)

    result["search_s"] = median_time(lambda: search(100))
    result["search_all_s"] = median_time(lambda: search(None))
    result["list_s"] = median_time(lambda: client.search_runs("bench-list", limit=args.listing))
    expected = sum(1 for r in range(args.search_runs) if ((r * 7) % 100) / 100 < 0.5 and r % 10 == 3)
    found = search(None)
    check(len(found) == expected and list(found["metrics.m1"]) == sorted(found["metrics.m1"]),
          f"{label} search: {len(found)} runs, expected {expected} in metrics.m1 order")
    numeric = client.search_runs("bench-search", filter="metrics.m0 < 0.5 and params.p0 = 3")
    check(len(numeric) == expected, f"{label} search with a number: {len(numeric)} runs, expected {expected}")
    check(len(client.search_runs("bench-list", limit=args.listing)) == args.listing, f"{label} listing")
    load.append(os.getloadavg()[0])
    result["load"] = max(load)
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
    parser.add_argument("--calls", type=int, default=200_000, help="per-call log_metric calls (mloop)")
    parser.add_argument("--peer-calls", type=int, default=1_000, help="per-call log_metric calls (MLflow)")
    parser.add_argument("--runs", type=int, default=1_000, help="runs created one by one, on both sides")
    parser.add_argument("--search-runs", type=int, default=2_000, help="runs searched, on both sides")
    parser.add_argument("--listing", type=int, default=1_000, help="runs listed into a DataFrame, on both sides")
    parser.add_argument("--skip-peer", action="store_true", help="do not run MLflow")
    parser.add_argument("--skip-postgres", action="store_true", help="do not run mloop on PostgreSQL")
    args = parser.parse_args()
    shutil.rmtree(WORK / "tracking", ignore_errors=True)
    home = WORK / "tracking" / "sqlite"
    results: dict[str, dict[str, float]] = {}
    results["mloop sqlite"] = measure("mloop sqlite", {"home": str(home)}, args, heavy=True)
    if not args.skip_postgres:
        results.update(_postgres(args))
    proc, url = serve(WORK / "tracking" / "server")
    try:
        results["mloop via server"] = measure("mloop via server", {"home": str(WORK / "tracking" / "client"),
                                                                  "tracking_uri": url}, args, heavy=False)
    finally:
        proc.terminate()
        proc.wait(10)
    peer: dict[str, Any] = {}
    if not args.skip_peer:
        print("  mlflow sqlite...", flush=True)
        peer = run_peer(peer_python("mlflow", ["mlflow"]), "mlflow_tracking.py", str(args.peer_calls), "150",
                        str(args.runs), str(args.search_runs), str(args.listing))
        for problem in peer.pop("errors"):
            check(False, f"mlflow {problem}")
        results[f"mlflow {peer.pop('version')} sqlite"] = peer
    report(results, peer, args)
    if errors:
        print(f"{len(errors)} wrong answer(s):", *errors, sep="\n  ")
        sys.exit(1)


def _postgres(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    try:
        import sqlalchemy as sa

        schema = f"bench_{int(time.time())}"
        admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # PostgreSQL not running: report without it
        print(f"  PostgreSQL skipped: {exc}")
        return {}
    try:
        settings = {"home": str(WORK / "tracking" / "pg"), "db_url": f"{POSTGRES}?options=-csearch_path%3D{schema}"}
        return {"mloop postgres": measure("mloop postgres", settings, args, heavy=True)}
    finally:
        mloop.configure(home=str(WORK / "tracking" / "sqlite"))  # let go of the schema's connections
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


def report(results: dict[str, dict[str, float]], peer: dict[str, float], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = [("per-call mloop/mlflow.log_metric, returned (calls/s)", "per_call_pts_s", "pts/s", True),
            ("per-call log_metric, durable at end_run (pts/s)", "per_call_durable_pts_s", "pts/s", True),
            ("150 log_param/set_tag calls, returned", "params_tags_s", "s", False),
            ("150 log_param/set_tag calls, durable at end_run", "params_tags_durable_s", "s", False),
            (f"create {args.runs:,} runs (1 param, 1 metric each), runs/s", "runs_per_s", "runs/s", True),
            ("1,000,000 points logged + durable", "bulk_1m_s", "s", False),
            (f"search {args.search_runs:,} runs, filter+order, limit 100", "search_s", "s", False),
            (f"search {args.search_runs:,} runs, filter+order, all matches", "search_all_s", "s", False),
            (f"list {args.listing:,} runs into a DataFrame", "list_s", "s", False),
            ("machine load (1-min average, highest seen)", "load", "", False)]
    table = Table(title="Tracking: mloop vs MLflow (medians; ratio = mloop sqlite vs mlflow, >1 = mloop better)")
    table.add_column("workload")
    for name in results:
        table.add_column(name, justify="right")
    table.add_column("ratio", justify="right")
    ours = results["mloop sqlite"]
    for label, key, unit, higher in rows:
        if key == "load":
            table.add_row(label, *(f"{r.get(key, 0):.2f}" for r in results.values()), "")
            continue
        table.add_row(label, *(fmt(r.get(key), unit) for r in results.values()),
                      ratio(ours.get(key), peer.get(key), higher))
    Console(width=220).print(table)
    print(f"{os.cpu_count()} CPUs; load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}. "
          "MLflow's 1M figure is extrapolated from 100,000 points written with log_batch (1,000 per call); "
          f"its per-call figures come from {args.peer_calls:,} calls (each is a synchronous write).")


if __name__ == "__main__":
    main()
