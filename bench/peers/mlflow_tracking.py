"""MLflow's side of bench/tracking.py; runs inside bench/.venv-mlflow and prints JSON."""

import json
import statistics
import sys
import tempfile
import time

import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient


def main() -> None:
    runs_for_listing = int(sys.argv[1])
    tmp = tempfile.mkdtemp()
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    client = MlflowClient()
    exp = client.create_experiment("bench", artifact_location=f"{tmp}/artifacts")
    mlflow.set_experiment(experiment_id=exp)
    result = {"version": mlflow.__version__}

    with mlflow.start_run():
        n = 300
        start = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", 0.5, step=i)
        result["per_call_pts_s"] = n / (time.perf_counter() - start)

    run = client.create_run(exp)
    batches, per = 100, 1000
    now = int(time.time() * 1000)
    start = time.perf_counter()
    for b in range(batches):
        client.log_batch(run.info.run_id, metrics=[Metric("loss", 0.5, now, b * per + i) for i in range(per)])
    result["bulk_pts_s"] = batches * per / (time.perf_counter() - start)

    listing = client.create_experiment("listing", artifact_location=f"{tmp}/a2")
    for r in range(runs_for_listing):
        info = client.create_run(listing)
        client.log_batch(info.info.run_id,
                         params=[Param(f"p{j}", str((r + j) % 10)) for j in range(5)],
                         metrics=[Metric(f"m{j}", ((r * 7 + j) % 100) / 100, now, 0) for j in range(3)])
        client.set_terminated(info.info.run_id)

    def timed(fn, repeat=5):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    result["list_s"] = timed(lambda: mlflow.search_runs(experiment_ids=[listing], max_results=runs_for_listing))
    result["search_s"] = timed(lambda: mlflow.search_runs(
        experiment_ids=[listing], filter_string="metrics.m0 < 0.5 and params.p0 = '3'",
        order_by=["metrics.m1 ASC"], max_results=100))
    print(json.dumps(result))


main()
