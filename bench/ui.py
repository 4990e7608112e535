"""Web UI benchmark: the runs page over 10,000 runs and a run page with a 1,000,000-point metric.

    python bench/ui.py [--runs 10000] [--points 1000000] [--no-browser]

Measured on a real ``mloop server`` (uvicorn on 127.0.0.1, SQLite):

- the REST answers the pages read: the first page of the runs table (newest first, sorted by a metric, filtered
  with OR), and the chart window of the 1,000,000-point metric (whole series, then a zoomed range);
- in headless Chromium (unless --no-browser): from navigation to the runs table on screen, to the first chart of
  the run page drawn (a quick sample of the long series), and to the chart of every bucket's extremes. The
  issue's targets: under 1 s for the table and under 2 s for the first chart.

The runs (each with three params and three metrics) are written straight into the tables, which is quick;
the points go through the repository's own bulk path. Every answer is checked; exit 1 when one is wrong.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _common import fmt, median_time  # noqa: E402
from sqlalchemy import insert, update  # noqa: E402

from mloop.config import Settings  # noqa: E402
from mloop.tracking import _tables as t  # noqa: E402
from mloop.tracking._values import encode_param  # noqa: E402
from mloop.tracking.client import open_repository  # noqa: E402

FILTER = "metrics.m0 < 0.2 or (params.p1 = 'b' and metrics.m1 > 0.5)"


def fill(settings: Settings, runs: int, points: int) -> tuple[str, str]:
    """(experiment id, id of the run holding the long metric)."""
    repo = open_repository(settings)
    experiment = repo.create_experiment("bench-ui")
    now = int(time.time() * 1000)
    ids = [uuid.uuid4().hex for _ in range(runs)]
    run_rows, param_rows, metric_rows = [], [], []
    for i, run_id in enumerate(ids):
        parent = ids[i - 1] if i % 10 and i % 10 < 3 else None  # some children, folded under their parent
        run_rows.append(dict(run_id=run_id, experiment_id=int(experiment.experiment_id), name=f"run-{i}",
                             status="running", user="bench", description="", start_time=now - i, end_time=now,
                             heartbeat=now, lifecycle_stage="active", parent_run_id=parent, artifact_uri=""))
        for key, value in (("p0", i % 7), ("p1", "abc"[i % 3]), ("lr", 10 ** -(i % 4))):
            text, vtype, number = encode_param(key, value)
            param_rows.append(dict(run_id=run_id, key=key, value=text, vtype=vtype, num=number))
        metric_rows += [(run_id, f"m{k}", ((i * 7919 + k * 104729) % 1000) / 1000, 0, now) for k in range(3)]
    with repo.db.write() as conn:
        conn.execute(insert(t.runs), run_rows)
        conn.execute(insert(t.params), param_rows)
    repo.log_metrics(metric_rows)  # a run takes metrics while it runs: finished once they are in
    with repo.db.write() as conn:
        conn.execute(update(t.runs).where(t.runs.c.run_id.in_(ids)).values(status="finished"))
    long_run = repo.create_run(experiment.experiment_id, "long", "bench", {}, None, "")
    step = 100_000
    for start in range(0, points, step):
        repo.log_metrics([(long_run.run_id, "loss", 1 / (1 + s) + (s % 97) / 1e4, s, now + s)
                          for s in range(start, min(points, start + step))])
    return experiment.experiment_id, long_run.run_id


def serve(settings: Settings) -> tuple[str, Any]:
    import uvicorn

    from mloop.server import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server


def api_times(url: str, experiment_id: str, run_id: str, runs: int, points: int) -> list[tuple[str, float]]:
    client = httpx.Client(base_url=url, timeout=120)
    page = {"experiment_ids": [experiment_id], "limit": 50, "roots_only": True}

    def first_page(**extra: Any) -> dict[str, Any]:
        answer = client.post("/api/runs/page", json={**page, **extra})
        answer.raise_for_status()
        return answer.json()

    found = first_page()
    roots = runs - sum(1 for i in range(runs) if i % 10 and i % 10 < 3)
    check(found["total"] == roots + 1 and len(found["runs"]) == 50, f"first page: {found['total']} runs")
    ordered = first_page(order_by=["metrics.m0 ASC"])["runs"]
    check([r["metrics"]["m0"] for r in ordered] == sorted(r["metrics"]["m0"] for r in ordered), "order by m0")
    filtered = first_page(filter=FILTER, roots_only=False)
    check(all(r["metrics"]["m0"] < 0.2 or (r["params"]["p1"] == "b" and r["metrics"]["m1"] > 0.5)
              for r in filtered["runs"]), "OR filter")

    def window(**extra: Any) -> dict[str, Any]:
        answer = client.get(f"/api/runs/{run_id}/metric-window", params={"key": "loss", "max_points": 1500, **extra})
        answer.raise_for_status()
        return answer.json()

    whole = window()
    check(whole["total"] == points and len(whole["steps"]) <= 1500, f"window of {whole['total']} points")
    sample = window(sample="true", max_points=300)
    check(sample["total"] is None and len(sample["steps"]) == 300, "sampled preview")
    zoom = window(start=500_000, end=501_000)
    check(zoom["total"] == 1001 and zoom["steps"][0] == 500_000, "zoomed window")
    return [
        (f"runs page 1 of {roots:,} top-level runs, newest first", median_time(first_page)),
        ("... sorted by a metric", median_time(lambda: first_page(order_by=["metrics.m0 ASC"]))),
        ("... filtered with OR over all runs", median_time(lambda: first_page(filter=FILTER, roots_only=False))),
        (f"chart window over {points:,} points (1,500 kept)", median_time(window, repeat=3)),
        ("... its quick sample (300 points)", median_time(lambda: window(sample="true", max_points=300))),
        ("... zoomed to 1,000 steps", median_time(lambda: window(start=500_000, end=501_000))),
    ]


def browser_times(url: str, experiment_id: str, run_id: str) -> list[tuple[str, float]]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium is not installed: browser timings skipped")
        return []
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/")  # warm: the browser caches Plotly as a person's would after the first visit
        page.wait_for_selector("main[data-state=ready]")
        for label, path, ready in [
                ("runs table on screen (browser)", f"/experiments/{experiment_id}", "table.runs tbody tr"),
                ("run page: first chart drawn, a sample (browser)", f"/runs/{run_id}",
                 ".chart[data-preview], .chart[data-points]"),
                ("run page: chart of every point's extremes (browser)", f"/runs/{run_id}", ".chart[data-points]")]:
            times = []
            for _ in range(3):
                started = time.perf_counter()
                page.goto(url + path)
                page.wait_for_selector(ready, timeout=60_000)
                times.append(time.perf_counter() - started)
            results.append((label, sorted(times)[1]))
        browser.close()
    return results


def check(ok: bool, what: str) -> None:
    if not ok:
        print(f"WRONG: {what}")
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    try:
        settings = Settings.load(home=str(home), tracking_uri="")
        started = time.perf_counter()
        experiment_id, run_id = fill(settings, args.runs, args.points)
        print(f"stored {args.runs:,} runs and {args.points:,} points in {time.perf_counter() - started:.1f} s")
        url, server = serve(settings)
        rows = api_times(url, experiment_id, run_id, args.runs, args.points)
        if not args.no_browser:
            rows += browser_times(url, experiment_id, run_id)
        server.should_exit = True
        width = max(len(label) for label, _ in rows)
        load = os.getloadavg()[0]
        print(f"{'what':<{width}}  median   (load average {load:.1f} on {os.cpu_count()} cores while measured)")
        for label, seconds in rows:
            print(f"{label:<{width}}  {fmt(seconds, 's')}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
