"""The client side of bench/mlflow_compat.py: the mlflow client against one tracking server; prints JSON.

    python mlflow_compat_client.py URI BATCHES RUNS

The same calls against MLflow's server and mloop's (it runs inside bench/.venv-mlflow, so both get the very same
client): ``log_batch`` of 1,000 metrics, ``log_batch`` of 800 metrics, 100 params and 100 tags, a filtered and
ordered ``search_runs`` over RUNS runs, and paging through all of them. Every answer is checked against the
data the script generated; wrong ones are listed under "errors".
"""

import json
import random
import sys
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import median_time  # noqa: E402  (standard library only)

FILTER = "metrics.m0 < 0.5 and params.p0 = '3'"
PAGE = 200


def log_batches(client, exp, batches, result, check):
    run_id = client.create_run(exp).info.run_id
    rounds = iter(range(10**6))

    def metrics_only():
        i = next(rounds)
        client.log_batch(run_id, metrics=[Metric(f"m{j % 10}", j / 7 + i, 1_700_000_000_000 + i, i * 100 + j // 10)
                                          for j in range(1000)])

    result["log_batch_metrics_s"] = median_time(metrics_only, batches)
    history = client.get_metric_history(run_id, "m3")
    if len(history) != batches * 100:
        check(f"log_batch: m3 has {len(history)} points, expected {batches * 100}")

    mixed_run = client.create_run(exp).info.run_id
    mixed = iter(range(10**6))

    def mixed_batch():
        i = next(mixed)
        client.log_batch(mixed_run, metrics=[Metric(f"k{j % 8}", float(j), 1_700_000_000_000, i * 100 + j // 8)
                                             for j in range(800)],
                         params=[Param(f"p{i}_{j}", str(j)) for j in range(100)],
                         tags=[RunTag(f"t{j}", f"round {i}") for j in range(100)])

    result["log_batch_mixed_s"] = median_time(mixed_batch, batches)
    data = client.get_run(mixed_run).data
    if len(data.params) != batches * 100 or data.tags.get("t5") != f"round {batches - 1}":
        check(f"log_batch mixed: {len(data.params)} params stored, expected {batches * 100}")


def make_runs(client, exp, runs):
    """RUNS finished runs with two params and two metrics each; the expected answer of FILTER, in order."""
    rng = random.Random(11)
    expected = []
    for i in range(runs):
        m0, p0 = rng.random(), str(i % 7)
        run_id = client.create_run(exp, run_name=f"r{i}").info.run_id
        client.log_batch(run_id, metrics=[Metric("m0", m0, 1_700_000_000_000, 0), Metric("m1", i, 0, 0)],
                         params=[Param("p0", p0), Param("p1", f"v{i}")], tags=[RunTag("grp", str(i % 3))])
        client.set_terminated(run_id)
        if m0 < 0.5 and p0 == "3":
            expected.append((m0, run_id))
    return [run_id for _, run_id in sorted(expected, reverse=True)]


def searches(client, exp, runs, result, check):
    expected = make_runs(client, exp, runs)
    found = []

    def search():
        found[:] = [r.info.run_id for r in client.search_runs([exp], FILTER, order_by=["metrics.m0 DESC"],
                                                              max_results=1000)]

    result["search_filtered_s"] = median_time(search, 15)
    if found != expected:
        check(f"search_runs: {len(found)} runs, expected {len(expected)} in metrics.m0 DESC order")

    listed = []

    def page_through():
        listed.clear()
        token = None
        while True:
            page = client.search_runs([exp], "", order_by=["attributes.start_time DESC"], max_results=PAGE,
                                      page_token=token)
            listed.extend(r.info.run_id for r in page)
            token = page.token
            if not token:
                return

    result["search_paged_s"] = median_time(page_through, 5)
    if len(listed) != runs or len(set(listed)) != runs:
        check(f"paging: saw {len(listed)} runs ({len(set(listed))} distinct), expected each of {runs} once")


def main():
    uri, batches, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    client = MlflowClient(tracking_uri=uri)
    result = {"errors": []}
    exp = client.create_experiment("compat-batches")
    log_batches(client, exp, batches, result, result["errors"].append)
    searches(client, client.create_experiment("compat-search"), runs, result, result["errors"].append)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
