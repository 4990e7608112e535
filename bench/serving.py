"""Serving benchmark: mloop serve against `mlflow models serve` and bare Starlette + uvicorn endpoints.

    python bench/serving.py [--seconds 10] [--rounds 3] [--skip-peer] [--skip-rf] [--rows 1000000]

One load client for all (wrk -t1, `apt-get install -y wrk`), on loopback, one server worker each, every
server started as its users start it: mloop serves ``models:/bench-lr@champion`` from its registry with the
default settings (prediction log on, alias polling on), also once with ``--no-log``. Workloads:
  1. 1-row requests to a logistic regression on 20 features at concurrency 1, 16 and 64: requests/s, p50,
     p99 for mloop, the bare endpoint that hands predict a NumPy array (the floor, no checks), the bare
     endpoint that builds a DataFrame per request, and MLflow. All servers run side by side and take turns,
     ``--rounds`` rounds each (the same for everybody), and each figure is the median over the rounds, so
     the shared machine's load hits every server alike;
  2. a random forest of 200 trees at concurrency 64, with and without micro-batching (same rounds);
  3. batch scoring of 1,000,000 rows from Parquet: `mloop batch-predict` against plain pandas
     (`read_parquet` then the estimator's `predict`) over the same file.
Every server's answer to the benchmark's record is checked against the estimator's own predict first, and
any non-2xx answer under load is a wrong answer (exit status 1). MLflow runs in bench/.venv-mlflow.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import BENCH, WORK, LoadWatch, check, finish, peer_python, ratio, run_peer  # noqa: E402

ROOT = BENCH.parent
OUT = WORK / "serving"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 20)), columns=[f"f{i}" for i in range(20)])


def make_models() -> dict[str, Path]:
    """Fit the two models, log each under a run, register it and point ``champion`` at it (as users deploy);
    the folders are kept too, for batch scoring and the estimator's reference answers."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from mloop._sdk import ActiveRun
    from mloop.config import Settings
    from mloop.registry import registry_for, save_model
    from mloop.tracking import TrackingClient

    shutil.rmtree(HOME, ignore_errors=True)
    settings = Settings.load(home=str(HOME))
    tracking, registry = TrackingClient(settings), registry_for(settings)
    X = frame(2000)
    y = (X.sum(axis=1) > 0).astype(int)
    paths = {"lr": OUT / "lr", "rf": OUT / "rf"}
    for name, model in (("lr", LogisticRegression()), ("rf", RandomForestClassifier(200, max_depth=12, n_jobs=1,
                                                                                     random_state=0))):
        model.fit(X, y)
        shutil.rmtree(paths[name], ignore_errors=True)
        save_model(model, paths[name], input_example=X.head(5))
        with tracking.start_run("bench-serving", run_class=ActiveRun, capture_environment=False) as run:
            version = run.log_model(model, name=f"bench-{name}", input_example=X.head(5)).version
        registry.set_alias(f"bench-{name}", "champion", version)
    return paths


def lua(name: str, body: str, path: str) -> Path:
    (OUT / f"{name}.json").write_text(body)
    script = OUT / f"{name}.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f'local f = io.open("{OUT / (name + ".json")}")\nwrk.body = f:read("*a")\nf:close()\n'
                      f'wrk.path = "{path}"\n')
    return script


def wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: .*", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": ms("50%"), "p99": ms("99%"), "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(0) if socket_errors else ""}


class Server:
    """A server process, ready when /health/ready (or /ping) answers; stopped with SIGTERM."""

    def __init__(self, cmd: list[str], port: int, ready: str = "/health/ready", env: dict[str, str] | None = None):
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{cmd[:4]} exited: {self.proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(self.url + ready, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"{cmd[:4]} never became ready")

    def cpu_seconds(self) -> float:
        """User and system CPU seconds the server has used so far: its process and the workers it started."""
        import psutil

        process = psutil.Process(self.proc.pid)
        total = 0.0
        for each in [process, *process.children(recursive=True)]:
            try:
                times = each.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


HOME = OUT / "home"
ENV = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MLOOP_HOME": str(HOME)}
LEVELS = (1, 16, 64)


def mloop_serve(uri: str, *extra: str) -> Server:
    """``mloop serve URI`` with the defaults (plus ``extra``), as a user starts it."""
    port = free_port()
    return Server([sys.executable, "-m", "mloop", "serve", uri, "--port", str(port), *extra], port, env=ENV)


def bare(kind: str) -> Server:
    port = free_port()
    return Server([sys.executable, str(BENCH / "peers" / "bare_starlette.py"), "models:/bench-lr@champion",
                   str(port), kind], port, env=ENV)


def answers(server: Server, path: str, body: str) -> list[float]:
    """The server's predictions for ``body`` (one POST)."""
    reply = httpx.post(server.url + path, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    reply.raise_for_status()
    return [float(p) for p in reply.json()["predictions"]]


def take_turns(servers: dict[str, tuple[Server, Path]], levels: tuple[int, ...], rounds: int,
               seconds: int) -> dict[str, dict[int, dict[str, float]]]:
    """Every server at every level, round after round; per server and level, the median of each figure."""
    for server, script in servers.values():
        wrk(server.url, script, 16, 2)  # warm-up
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {label: {c: [] for c in levels} for label in servers}
    for round_ in range(rounds):
        for label, (server, script) in servers.items():
            for c in levels:
                before = server.cpu_seconds()
                found = wrk(server.url, script, c, seconds)
                # the server's CPU per request: what the log costs, even when the neighbours' load blurs p99
                found["cpu_us"] = (server.cpu_seconds() - before) / max(found["rps"] * seconds, 1) * 1e6
                runs[label][c].append(found)
                check(found["non2xx"] == 0, f"{label} c={c}: {found['non2xx']} non-2xx answers")
                print(f"  round {round_ + 1} {label:<36} c={c:<3} {found['rps']:>8,.0f} req/s  "
                      f"p50 {found['p50']:7.2f} ms  p99 {found['p99']:8.2f} ms  CPU {found['cpu_us']:5.0f} us/request "
                      f"{found['socket_errors']}", flush=True)
    return {label: {c: {k: statistics.median(r[k] for r in found) for k in ("rps", "p50", "p99", "cpu_us")}
                    for c, found in by_c.items()} for label, by_c in runs.items()}


def online(paths: dict[str, Path], seconds: int, rounds: int, skip_peer: bool,
           skip_rf: bool) -> dict[str, dict[int, dict[str, float]]]:
    from contextlib import ExitStack

    from mloop.registry import load_model

    row = frame(1, seed=1)
    record = json.dumps(row.to_dict("records"))
    expected = {name: [float(p) for p in load_model(path).native.predict(row)] for name, path in paths.items()}
    mloop_lua = lua("predict", record, "/predict")
    mlflow_lua = lua("invocations", json.dumps({"dataframe_records": json.loads(record)}), "/invocations")
    with ExitStack() as stack:
        servers = {"mloop serve (defaults, log on)": (stack.enter_context(
                       mloop_serve("models:/bench-lr@champion")), mloop_lua),
                   "mloop serve --no-log": (stack.enter_context(
                       mloop_serve("models:/bench-lr@champion", "--no-log")), mloop_lua),
                   "bare Starlette, NumPy input": (stack.enter_context(bare("array")), mloop_lua),
                   "bare Starlette, DataFrame per request": (stack.enter_context(bare("frame")), mloop_lua)}
        if not skip_peer:
            python = peer_python("mlflow", ["mlflow"])
            if subprocess.run([str(python), "-c", "import sklearn"], capture_output=True).returncode != 0:
                subprocess.run([str(python), "-m", "pip", "install", "-q", "scikit-learn"], check=True)
            shutil.rmtree(OUT / "mlflow-lr", ignore_errors=True)
            info = run_peer(python, "mlflow_serving_model.py", str(OUT / "mlflow-lr"))
            port = free_port()
            server = stack.enter_context(Server(
                [str(python.parent / "mlflow"), "models", "serve", "-m", info["path"], "-p", str(port),
                 "-h", "127.0.0.1", "--env-manager", "local"], port, ready="/ping",
                env={**ENV, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}))
            servers[f"mlflow models serve {info['version']}"] = (server, mlflow_lua)
        for label, (server, _) in servers.items():
            path = "/invocations" if label.startswith("mlflow") else "/predict"
            body = (OUT / ("invocations.json" if label.startswith("mlflow") else "predict.json")).read_text()
            got = answers(server, path, body)
            check(np.allclose(got, expected["lr"]), f"{label} answers {got}, the estimator {expected['lr']}")
        results = take_turns(servers, LEVELS, rounds, seconds)
    if not skip_rf:
        with mloop_serve("models:/bench-rf@champion", "--no-log") as plain, \
                mloop_serve("models:/bench-rf@champion", "--no-log", "--max-batch-size", "64",
                            "--max-wait-ms", "5") as batched:
            for label, server in (("plain", plain), ("batched", batched)):
                got = answers(server, "/predict", record)
                check(np.allclose(got, expected["rf"]), f"RF-200 {label} answers {got}, the estimator "
                                                          f"{expected['rf']}")
            results.update(take_turns({"mloop serve RF-200, no batching": (plain, mloop_lua),
                                       "mloop serve RF-200, batching 64": (batched, mloop_lua)},
                                      (64,), rounds, seconds))
    return results


def batch(paths: dict[str, Path], rows: int) -> dict[str, float]:
    from mloop.registry import load_model
    from mloop.serving import batch_predict

    source = OUT / "batch.parquet"
    frame(rows, seed=2).to_parquet(source)
    model = load_model(paths["lr"]).native  # imports (skops, sklearn) paid here, outside both timings
    out = OUT / "batch-out"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = batch_predict(str(paths["lr"]), str(source), str(out), chunk_rows=100_000)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    data = pd.read_parquet(source)
    data["prediction"] = model.predict(data)
    data.to_parquet(OUT / "pandas-out.parquet")
    theirs = time.perf_counter() - started
    assert result.rows == rows
    return {"mloop": rows / ours, "pandas": rows / theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of turns (every server gets as many)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-rf", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--only-batch", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    watch = LoadWatch()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"wrk -t1, {args.seconds} s per run, {args.rounds} rounds for every server, medians over the rounds")
    paths = make_models()
    if args.only_batch:
        b = batch(paths, args.rows)
        print(f"batch scoring {args.rows:,} rows: mloop {b['mloop']:,.0f} rows/s, pandas {b['pandas']:,.0f} rows/s")
        finish(watch)
        return
    res = online(paths, args.seconds, args.rounds, args.skip_peer, args.skip_rf)
    print(f"\n{'server (median of ' + str(args.rounds) + ' rounds)':<40}"
          + "".join(f"{'c=' + str(c) + ' req/s':>12}{'p50/p99 ms':>16}" for c in LEVELS))
    for label, by_c in res.items():
        cells = "".join(f"{by_c[c]['rps']:>12,.0f}{by_c[c]['p50']:>8.1f}/{by_c[c]['p99']:<7.0f}" if c in by_c
                        else f"{'-':>12}{'':>16}" for c in LEVELS)
        print(f"{label:<40}{cells}")
    on, off = res["mloop serve (defaults, log on)"], res["mloop serve --no-log"]
    numpy_floor, per_frame = res["bare Starlette, NumPy input"], res["bare Starlette, DataFrame per request"]
    mlflow = next((v for k, v in res.items() if k.startswith("mlflow")), None)
    print("\nratios (requests/s)")
    for c in LEVELS:
        print(f"  c={c:<3} mloop / bare NumPy {on[c]['rps'] / numpy_floor[c]['rps']:.0%} (target 70%)"
              f"   mloop / bare DataFrame {on[c]['rps'] / per_frame[c]['rps']:.0%}"
              f"   mloop / mlflow {ratio(on[c]['rps'], mlflow[c]['rps'] if mlflow else None, True)} (target 3x)"
              f"   log on / off {on[c]['rps'] / off[c]['rps']:.0%} (target 90%)"
              f"   log's CPU {on[c]['cpu_us'] - off[c]['cpu_us']:.0f} us/request, p99 on/off "
              f"{on[c]['p99']:.1f}/{off[c]['p99']:.1f} ms")
    if "mloop serve RF-200, no batching" in res:
        rf_plain, rf_batch = res["mloop serve RF-200, no batching"][64], res["mloop serve RF-200, batching 64"][64]
        print(f"  RF-200 c=64: batching / none {rf_batch['rps'] / rf_plain['rps']:.1f}x (target 3x), "
              f"p99 {rf_batch['p99']:.1f} ms against {rf_plain['p99']:.1f} ms (target <= 2x)")
    if not args.skip_batch:
        b = batch(paths, args.rows)
        print(f"\nbatch scoring {args.rows:,} rows: mloop batch-predict {b['mloop']:,.0f} rows/s, "
              f"pandas read_parquet + predict + to_parquet {b['pandas']:,.0f} rows/s ({b['mloop'] / b['pandas']:.0%})")
    print(json.dumps(res))
    finish(watch)


if __name__ == "__main__":
    main()
