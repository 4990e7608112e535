"""The browsing queries on SQLite and PostgreSQL alike: a page of top-level runs (a parent in another experiment
does not hide a run), an OR filter, and a metric window summarized, sampled and zoomed."""

from __future__ import annotations

import math

from mloop.config import Settings
from mloop.tracking import TrackingClient
from mloop.tracking._browse import metric_window, runs_page


def test_browsing_queries_answer_the_same_on_both_databases(tmp_path, db_url: str) -> None:
    client = TrackingClient(Settings.load(home=str(tmp_path / "home"), db_url=db_url, tracking_uri=""))
    with (client.start_run("flows", "task") as task,
          client.start_run("eta", "candidate", parent=task, params={"lr": 0.1}) as candidate):
        candidate.log_metric("rmse", 4.0)
    with client.start_run("eta", "sweep", params={"lr": 0.2}) as sweep:
        for step in range(3000):
            sweep.log_metric("loss", math.nan if step == 7 else 100.0 if step == 1234 else 1 / (1 + step), step=step)
        with client.start_run("eta", "trial", params={"lr": 0.3}) as trial:
            trial.log_metric("rmse", 3.0)
    client.writer.settle()
    repo, eta = client.repo, client.get_experiment("eta").experiment_id
    top = runs_page(repo, [eta], roots_only=True)
    assert sorted(r["name"] for r in top.runs) == ["candidate", "sweep"] and top.total == 2
    assert {r["name"]: r["children"] for r in top.runs} == {"candidate": 0, "sweep": 1}
    assert top.columns["params"] == ["lr"] and top.columns["metrics"] == ["loss", "rmse"]
    assert "mloop.libraries" not in top.columns["tags"]  # environment records too long for a column
    found = runs_page(repo, [eta], "metrics.rmse < 3.5 or (params.lr = 0.1 and metrics.rmse >= 4)", ["metrics.rmse"])
    assert [r["name"] for r in found.runs] == ["trial", "candidate"]
    assert [r["name"] for r in runs_page(repo, [], parent_run_id=sweep.run_id, with_columns=False).runs] == ["trial"]

    whole = metric_window(repo, sweep.run_id, "loss", max_points=200)
    assert whole.total == 3000 and len(whole.points) <= 200 and max(p.value for p in whole.points) == 100.0
    sample = metric_window(repo, sweep.run_id, "loss", max_points=50, sample=True)
    assert sample.total is None and len(sample.points) == 50 and sample.points[-1].step == 2999
    zoomed = metric_window(repo, sweep.run_id, "loss", 5, 9, max_points=200)
    assert [p.step for p in zoomed.points] == [5, 6, 7, 8, 9] and math.isnan(zoomed.points[2].value)
