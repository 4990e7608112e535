"""``MlflowClient.search_runs`` paging through 2,500 runs with page tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

import mloop
from mloop._util.clock import now_ms
from mloop.config import Settings
from mloop.tracking import _tables as t
from mloop.tracking.client import open_repository
from tests.server.conftest import LiveServer, serve
from tests.server.mlflow.conftest import QUIET

mlflow = pytest.importorskip("mlflow")
RUNS = 2500


@pytest.fixture
def server(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    for name, value in QUIET.items():
        monkeypatch.setenv(name, value)
    for live in serve(Settings.load(home=str(tmp_path / "server-home"), db_url=db_url)):
        mlflow.set_tracking_uri(live.url)
        yield live
    mlflow.set_tracking_uri(None)


def store_runs(settings: Settings) -> tuple[str, dict[str, float]]:
    """2,500 runs written straight to the store (setup, not under test): a unique score and a bucket each."""
    repo = open_repository(settings)
    exp_id = repo.create_experiment("many").experiment_id
    rng, now = random.Random(7), now_ms()
    ids = [f"{i:032x}" for i in range(1, RUNS + 1)]
    scores = dict(zip(ids, rng.sample(range(RUNS * 10), RUNS), strict=True))
    with repo.db.write() as conn:
        conn.execute(insert(t.runs), [
            {"run_id": run_id, "experiment_id": int(exp_id), "name": f"run-{i}", "status": "finished",
             "user": "ana", "description": "", "start_time": now - i, "end_time": now, "heartbeat": now,
             "lifecycle_stage": "active", "parent_run_id": None, "artifact_uri": ""} for i, run_id in enumerate(ids)])
        conn.execute(insert(t.params), [{"run_id": run_id, "key": "bucket", "value": str(i % 7), "vtype": "str",
                                         "num": float(i % 7)} for i, run_id in enumerate(ids)])
        conn.execute(insert(t.latest_metrics), [{"run_id": run_id, "key": "score", "value": score / 10, "step": 0,
                                                 "timestamp": now} for run_id, score in scores.items()])
    return exp_id, {run_id: score / 10 for run_id, score in scores.items()}


def test_search_runs_pages_through_every_run_once_in_order(server: LiveServer) -> None:
    exp_id, scores = store_runs(server.settings)
    client = mlflow.MlflowClient()
    seen, token, pages = [], None, 0
    while True:
        page = client.search_runs([exp_id], order_by=["metrics.score DESC"], max_results=1000, page_token=token)
        seen += [(r.info.run_id, r.data.metrics["score"]) for r in page]
        pages += 1
        token = page.token
        if not token:
            break
    assert pages == 3 and len(seen) == RUNS
    assert [run_id for run_id, _ in seen] == sorted(scores, key=scores.__getitem__, reverse=True)
    assert all(scores[run_id] == value for run_id, value in seen)

    # a filtered search pages the same way; the client's own paging helper gets every match
    bucket = client.search_runs([exp_id], "params.bucket = '3'", order_by=["attributes.start_time DESC"],
                                max_results=100)
    everything = mlflow.search_runs([exp_id], "params.bucket = '3'", order_by=["attributes.start_time DESC"],
                                    output_format="list")
    assert len(bucket) == 100 and len(everything) == len([i for i in range(RUNS) if i % 7 == 3])
    assert [r.info.run_id for r in everything[:100]] == [r.info.run_id for r in bucket]

    # mloop's SDK reads the same runs with the same values, in the same order
    mloop.configure(tracking_uri=server.url)
    frame = mloop.search_runs("many", order_by="metrics.score DESC")
    assert frame["run_id"].tolist() == [run_id for run_id, _ in seen]
    assert frame["metrics.score"].tolist() == [value for _, value in seen]
    mloop_buckets = dict(zip(frame["run_id"], frame["params.bucket"], strict=True))
    assert {r.info.run_id: r.data.params["bucket"] for r in everything} == {
        run_id: mloop_buckets[run_id] for run_id in (r.info.run_id for r in everything)}
