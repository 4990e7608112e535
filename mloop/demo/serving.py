"""Demo step: serve the champion in a background process, send a burst (some invalid), move the alias
to a challenger under load without a failed request, label a few predictions and read the log back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from rich.json import JSON
from rich.table import Table

import mloop
from mloop.demo.runner import DemoContext
from mloop.demo.tracking import TARGET, features
from mloop.registry import registry_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(ctx: DemoContext, uri: str) -> tuple[subprocess.Popen[bytes], str]:
    """``mloop serve`` in its own process (a fresh interpreter: OpenMP models hang in a forked child)."""
    port = _free_port()
    root = str(Path(mloop.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}  # one row at a time: waking an OpenMP team costs more than it saves
    env.pop("MLOOP_TRACKING_URI", None)
    process = subprocess.Popen([sys.executable, "-m", "mloop", "serve", uri, "--home", str(ctx.home), "--port",
                                str(port), "--reload-seconds", "0.25"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the demo's model server did not start: {process.stderr.read().decode()[-2000:]}"
                       if process.stderr else "the demo's model server did not start")


def _batch(ctx: DemoContext, name: str) -> None:
    """While the server starts: score the last month in batch, as a nightly job would."""
    from mloop.serving import batch_predict

    source = ctx.home / "serving" / "live.parquet"
    source.parent.mkdir(parents=True, exist_ok=True)
    features(ctx.live).to_parquet(source)
    result = batch_predict(f"models:/{name}@champion", str(source), str(ctx.home / "serving" / "scored"),
                           chunk_rows=5_000, client=registry_for(ctx.settings))
    ctx.console.print(f"batch: scored {result.rows:,} live trips in {result.chunks_scored} chunks with "
                      f"{result.model_uri} in {result.seconds:.1f} s -> {result.output}", highlight=False)


def run(ctx: DemoContext) -> None:
    from mloop.serving import read_predictions

    name = ctx.state.get("model_name", "trip-duration")
    registry = registry_for(ctx.settings)
    champion = registry.get_alias(name, "champion").version
    challenger = max(v.version for v in registry.list_versions(name) if v.version != champion)
    registry.set_alias(name, "challenger", challenger)
    process, url = _start(ctx, f"models:/{name}@champion")
    try:
        _batch(ctx, name)
        _wait_ready(process, url)
    except BaseException:
        process.kill()
        raise
    ctx.console.print(f"serving models:/{name}@champion (v{champion}) at {url} in process {process.pid} "
                      f"(docs at {url}/docs, metrics at {url}/metrics)", highlight=False)
    live = ctx.live.head(400).reset_index(drop=True)
    rows = features(live).to_dict(orient="records")
    try:
        with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=16)) as http:
            _burst(ctx, http, rows)
            moved = _move_under_load(ctx, http, registry, name, champion, challenger, rows)
            labelled = _feedback(http, rows, live)
    finally:
        process.terminate()  # SIGTERM: uvicorn drains, then the prediction log is flushed
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    log = read_predictions(ctx.settings, name)
    table = Table(title=f"prediction log: {len(log):,} predictions under {ctx.settings.artifact_root}/predictions/"
                        f"{name}, {log['label'].notna().sum()} with a label")
    for column in ("id", "version", "inputs", "predicted", "label", "ms"):
        table.add_column(column, overflow="fold")
    for _, row in log[log["label"].notna()].tail(4).iterrows():
        table.add_row(row["id"], row["version"], row["inputs"], f"{float(row['output']):.1f}",
                      f"{float(row['label']):.1f}", f"{row['latency_ms']:.1f}")
    ctx.console.print(table)
    ctx.state["serving"] = {"url": url, "requests_during_move": moved["requests"], "failed": moved["failed"],
                            "logged": len(log), "labelled": labelled, "champion": challenger}
    ctx.console.print("Look next: [bold]mloop serve models:/" + name + "@champion[/] then open /docs and /metrics; "
                      "[bold]mloop batch-predict[/] for files and tables.")


def _burst(ctx: DemoContext, http: httpx.Client, rows: list[dict[str, Any]]) -> None:
    bad = [{**rows[0], "hour": "seven"}, {k: v for k, v in rows[1].items() if k != "distance_km"},
           {**rows[2], "weather": None, "zone_id": 3.5}, {**rows[3], "hour": 77}]
    bodies = [[r] for r in rows[:200]] + [[b] for b in bad]
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda body: http.post("/predict", json=body), bodies))
    seconds = time.perf_counter() - started
    statuses = [a.status_code for a in answers]
    ctx.console.print(f"burst: {len(bodies)} requests in {seconds:.2f} s from 8 clients: "
                      f"{statuses.count(200)} answered 200, {statuses.count(422)} rejected with 422, "
                      f"{sum(s >= 500 for s in statuses)} server errors", highlight=False)
    rejected = next(a for a in answers if a.status_code == 422 and len(a.json()["errors"]) > 1)
    ctx.console.print("one 422 body (every bad field, with the value and what was expected):")
    ctx.console.print(JSON.from_data(rejected.json()))
    by_schema = [a for a in answers if a.status_code == 422 and a.json()["errors"][0]["field"] == "hour"
                 and a.json()["errors"][0]["value"] == 77]
    if by_schema:  # the signature takes any integer; the training schema attached to the version says 0-23
        error = by_schema[0].json()["errors"][0]
        ctx.console.print(f"hour=77 rejected by the training schema: {error['message']}", highlight=False)


def _move_under_load(ctx: DemoContext, http: httpx.Client, registry: Any, name: str, champion: int,
                     challenger: int, rows: list[dict[str, Any]]) -> dict[str, int]:
    stop = threading.Event()
    seen: list[tuple[int, str]] = []

    def client(offset: int) -> None:
        i = offset
        while not stop.is_set():
            try:
                r = http.post("/predict", json=[rows[i % len(rows)]])
                seen.append((r.status_code, r.headers.get("x-model-version", "")))
            except httpx.HTTPError:
                seen.append((0, ""))
            i += 4

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    registry.set_alias(name, "champion", challenger)
    ctx.console.print(f"moved alias champion: v{champion} -> v{challenger} while 4 clients keep sending")
    deadline = time.monotonic() + 15
    while not any(v == str(challenger) for _, v in seen[-8:]) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    failed = sum(s != 200 for s, _ in seen)
    before = sum(v == str(champion) for _, v in seen)
    after = sum(v == str(challenger) for _, v in seen)
    ctx.console.print(f"during the move: {len(seen)} requests, {failed} failed; {before} answered by v{champion}, "
                      f"{after} by v{challenger} after the hot reload", highlight=False)
    return {"requests": len(seen), "failed": failed}


def _feedback(http: httpx.Client, rows: list[dict[str, Any]], live: Any) -> int:
    answer = http.post("/predict", json=rows[:20]).json()
    labels = [{"id": pid, "label": float(actual)} for pid, actual in zip(answer["ids"], live[TARGET].head(20),
                                                                       strict=True)]
    http.post("/feedback", json={"feedback": labels})
    return len(labels)
