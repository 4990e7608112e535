"""Serving benchmark: mloop serve against `mlflow models serve` and a bare Starlette + uvicorn endpoint.

    python bench/serving.py [--seconds 10] [--skip-peer] [--rows 1000000]

One load client for all (wrk, `apt-get install -y wrk`), on loopback, one server worker
each. Workloads:
  1. 1-row requests to a logistic regression on 20 features at concurrency 16 and 64:
     requests/s, p50, p99 for mloop (prediction log on), the bare endpoint (records to a DataFrame,
     and the stricter NumPy-input variant), MLflow;
  2. the prediction log's cost (mloop with and without it);
  3. a random forest of 200 trees at concurrency 64, with and without micro-batching;
  4. batch scoring of 1,000,000 rows from Parquet: `mloop batch-predict` against plain
     pandas (`read_parquet` then the estimator's `predict`) over the same file.
MLflow runs in its own virtualenv (bench/.venv-mlflow).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import BENCH, WORK, peer_python, ratio, run_peer  # noqa: E402

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
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from mloop.registry import save_model

    X = frame(2000)
    y = (X.sum(axis=1) > 0).astype(int)
    paths = {"lr": OUT / "lr", "rf": OUT / "rf"}
    for name, model in (("lr", LogisticRegression()), ("rf", RandomForestClassifier(200, max_depth=12, n_jobs=1,
                                                                                     random_state=0))):
        shutil.rmtree(paths[name], ignore_errors=True)
        save_model(model.fit(X, y), paths[name], input_example=X.head(5))
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

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


ENV = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def mloop_serve(model: Path, *extra: str) -> Server:
    port = free_port()
    return Server([sys.executable, "-m", "mloop", "serve", str(model), "--port", str(port), "--reload-seconds", "0",
                   "--home", str(OUT / "home"), *extra], port, env=ENV)


def online(paths: dict[str, Path], seconds: int, skip_peer: bool) -> dict[str, dict[int, dict[str, float]]]:
    record = json.dumps(frame(1, seed=1).to_dict("records"))
    mloop_lua = lua("predict", record, "/predict")
    results: dict[str, dict[int, dict[str, float]]] = {}

    def measure(label: str, server: Server, script: Path, levels: tuple[int, ...] = (16, 64)) -> None:
        wrk(server.url, script, 16, 2)  # warm-up
        results[label] = {c: wrk(server.url, script, c, seconds) for c in levels}
        for c, r in results[label].items():
            print(f"  {label:<34} c={c:<3} {r['rps']:>8,.0f} req/s  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms"
                  f"  non-2xx {r['non2xx']} {r['socket_errors']}", flush=True)

    # log on and log off run side by side and take turns (3 rounds, median), so machine noise hits both alike
    with mloop_serve(paths["lr"]) as on, mloop_serve(paths["lr"], "--no-log") as off:
        for server in (on, off):
            wrk(server.url, mloop_lua, 16, 2)
        rounds: dict[str, dict[int, list[dict[str, float]]]] = {"mloop serve (log on)": {}, "mloop serve (log off)": {}}
        for _ in range(3):
            for label, server in (("mloop serve (log on)", on), ("mloop serve (log off)", off)):
                for c in (16, 64):
                    rounds[label].setdefault(c, []).append(wrk(server.url, mloop_lua, c, seconds))
        for label, by_c in rounds.items():
            results[label] = {c: sorted(runs, key=lambda r: r["rps"])[1] for c, runs in by_c.items()}
            for c, r in results[label].items():
                print(f"  {label:<34} c={c:<3} {r['rps']:>8,.0f} req/s  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms"
                      f"  (median of 3)", flush=True)
    port = free_port()
    with Server([sys.executable, str(BENCH / "peers" / "bare_starlette.py"), str(paths["lr"]), str(port)], port,
                env=ENV) as server:
        measure("bare Starlette + uvicorn", server, mloop_lua)
    port = free_port()
    with Server([sys.executable, str(BENCH / "peers" / "bare_starlette.py"), str(paths["lr"]), str(port), "array"],
                port, env=ENV) as server:
        measure("bare Starlette, NumPy input", server, mloop_lua)
    if not skip_peer:
        python = peer_python("mlflow", ["mlflow"])
        if subprocess.run([str(python), "-c", "import sklearn"], capture_output=True).returncode != 0:
            subprocess.run([str(python), "-m", "pip", "install", "-q", "scikit-learn"], check=True)
        shutil.rmtree(OUT / "mlflow-lr", ignore_errors=True)
        info = run_peer(python, "mlflow_serving_model.py", str(OUT / "mlflow-lr"))
        port = free_port()
        mlflow_lua = lua("invocations", json.dumps({"dataframe_records": json.loads(record)}), "/invocations")
        with Server([str(python.parent / "mlflow"), "models", "serve", "-m", info["path"], "-p", str(port),
                     "-h", "127.0.0.1", "--env-manager", "local"], port, ready="/ping",
                    env={**ENV, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}) as server:
            measure(f"mlflow models serve {info['version']}", server, mlflow_lua)
    rf_lua = lua("predict", record, "/predict")
    with mloop_serve(paths["rf"], "--no-log") as server:
        measure("mloop serve RF-200, no batching", server, rf_lua, (64,))
    with mloop_serve(paths["rf"], "--no-log", "--max-batch-size", "64", "--max-wait-ms", "5") as server:
        measure("mloop serve RF-200, batching 64", server, rf_lua, (64,))
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
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--only-batch", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; wrk -t1, {args.seconds} s per run")
    paths = make_models()
    if args.only_batch:
        b = batch(paths, args.rows)
        print(f"batch scoring {args.rows:,} rows: mloop {b['mloop']:,.0f} rows/s, pandas {b['pandas']:,.0f} rows/s")
        return
    res = online(paths, args.seconds, args.skip_peer)
    print("\nratios (requests/s)")
    on, off, bare = res["mloop serve (log on)"], res["mloop serve (log off)"], res["bare Starlette + uvicorn"]
    mlflow = next((v for k, v in res.items() if k.startswith("mlflow")), None)
    for c in (16, 64):
        print(f"  c={c}: mloop / mlflow {ratio(on[c]['rps'], mlflow[c]['rps'] if mlflow else None, True)} (target 3x)"
              f"   mloop / bare {on[c]['rps'] / bare[c]['rps']:.0%} (target 70%)"
              f"   log on / log off {on[c]['rps'] / off[c]['rps']:.0%} (target 90%)")
    strict = res["bare Starlette, NumPy input"]
    for c in (16, 64):
        print(f"  c={c}: mloop / bare with NumPy input (no checks) {on[c]['rps'] / strict[c]['rps']:.0%}")
    rf_plain, rf_batch = res["mloop serve RF-200, no batching"][64], res["mloop serve RF-200, batching 64"][64]
    print(f"  RF-200 c=64: batching / none {rf_batch['rps'] / rf_plain['rps']:.1f}x (target 3x), "
          f"p99 {rf_batch['p99']:.1f} ms against {rf_plain['p99']:.1f} ms (target <= 2x)")
    if not args.skip_batch:
        b = batch(paths, args.rows)
        print(f"\nbatch scoring {args.rows:,} rows: mloop batch-predict {b['mloop']:,.0f} rows/s, "
              f"pandas read_parquet + predict + to_parquet {b['pandas']:,.0f} rows/s ({b['mloop'] / b['pandas']:.0%})")


if __name__ == "__main__":
    main()
