"""MLflow's side of bench/tracking.py; runs inside bench/.venv-mlflow and prints JSON.

    python mlflow_tracking.py CALLS PARAM_CALLS RUNS SEARCH_RUNS LISTING

The same workloads as mloop's side, through MLflow's fluent API as its users call it, on SQLite. Each
answer is checked; wrong ones are listed under "errors".
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import median_time as timed  # noqa: E402  (standard library only: it runs in MLflow's venv)

FILTER = "metrics.m0 < 0.5 and params.p0 = '3'"


def main() -> None:
    calls, param_calls, runs, search_runs, listing = map(int, sys.argv[1:6])
    tmp = tempfile.mkdtemp()
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    client = MlflowClient()
    exp = client.create_experiment("bench", artifact_location=f"{tmp}/artifacts")
    mlflow.set_experiment(experiment_id=exp)
    result = {"version": mlflow.__version__, "errors": []}
    check = result["errors"].append

    with mlflow.start_run() as run:  # also warms up the store
        start = time.perf_counter()
        for i in range(calls):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        result["per_call_pts_s"] = calls / (time.perf_counter() - start)
    result["per_call_durable_pts_s"] = calls / (time.perf_counter() - start)
    history = client.get_metric_history(run.info.run_id, "loss")
    if len(history) != calls or abs(sum(m.value for m in history) - sum(1.0 / (i + 1) for i in range(calls))) > 1e-6:
        check(f"per-call: stored {len(history)} points, expected {calls}")

    with mlflow.start_run() as run:
        start = time.perf_counter()
        for i in range(param_calls // 2):
            mlflow.log_param(f"p{i}", i)
            mlflow.set_tag(f"t{i}", f"v{i}")
        result["params_tags_s"] = time.perf_counter() - start
    result["params_tags_durable_s"] = time.perf_counter() - start
    stored = client.get_run(run.info.run_id).data
    if len(stored.params) != param_calls // 2 or stored.params.get("p1") != "1" or stored.tags.get("t2") != "v2":
        check(f"params/tags: stored {len(stored.params)} params")

    # run creation: a param and a metric each, environment captured as MLflow does by default
    created = mlflow.create_experiment("creation", artifact_location=f"{tmp}/a1")
    start = time.perf_counter()
    for i in range(runs):
        with mlflow.start_run(experiment_id=created):
            mlflow.log_param("i", i)
            mlflow.log_metric("score", i / runs)
    result["runs_per_s"] = runs / (time.perf_counter() - start)
    if len(mlflow.search_runs(experiment_ids=[created], max_results=runs + 10)) != runs:
        check("run creation: wrong number of runs found")

    # 100,000 points through log_batch (1,000 per call), extrapolated to 1M: per-call logging would take hours
    bulk = client.create_run(exp)
    now = int(time.time() * 1000)
    start = time.perf_counter()
    for b in range(100):
        client.log_batch(bulk.info.run_id, metrics=[Metric("loss", 0.5, now, b * 1000 + i) for i in range(1000)])
    result["bulk_1m_s"] = (time.perf_counter() - start) * 10

    for name, count in (("search", search_runs), ("listing", listing)):
        eid = client.create_experiment(name, artifact_location=f"{tmp}/{name}")
        for r in range(count):
            info = client.create_run(eid)
            client.log_batch(info.info.run_id,
                             params=[Param(f"p{j}", str((r + j) % 10)) for j in range(5)],
                             metrics=[Metric(f"m{j}", ((r * 7 + j) % 100) / 100, now, 0) for j in range(3)])
            client.set_terminated(info.info.run_id)
        result[f"{name}_id"] = eid
    search_id, listing_id = result.pop("search_id"), result.pop("listing_id")
    expected = sum(1 for r in range(search_runs) if ((r * 7) % 100) / 100 < 0.5 and r % 10 == 3)

    def search(limit):
        return mlflow.search_runs(experiment_ids=[search_id], filter_string=FILTER, order_by=["metrics.m1 ASC"],
                                  max_results=limit)

    result["search_s"] = timed(lambda: search(100))
    result["search_all_s"] = timed(lambda: search(search_runs))
    result["list_s"] = timed(lambda: mlflow.search_runs(experiment_ids=[listing_id], max_results=listing))
    found = search(search_runs)
    if len(found) != expected or list(found["metrics.m1"]) != sorted(found["metrics.m1"]):
        check(f"search: {len(found)} runs, expected {expected} in metrics.m1 order")
    if len(mlflow.search_runs(experiment_ids=[listing_id], max_results=listing)) != listing:
        check("listing: wrong number of runs")
    result["load"] = os.getloadavg()[0]
    print(json.dumps(result))


main()
