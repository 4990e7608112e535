"""What filtering listings by the caller's projects costs a page of runs, with auth on.

    python bench/visibility.py [--runs 10000] [--rounds 40]

One `mloop server --auth` over ``--runs`` runs in 20 experiments, half tagged project A and half project B. A
server admin (nothing filtered) and a viewer of A (the search scoped to A's experiments inside its SQL) ask for
the same first page of the runs table (POST /api/runs/page, 50 runs, with the column chooser's keys), a page
sorted by a metric, and a run search of 100, alternating, after a warm-up; the table shows the median of each and
the ratio. The viewer's answers are checked to hold only A's runs, with full pages; the command exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _common import WORK, LoadWatch, check, finish, fmt  # noqa: E402
from auth import start_server  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from mloop.auth import AuthStore  # noqa: E402
from mloop.config import Settings  # noqa: E402
from mloop.tracking import _tables as t  # noqa: E402
from mloop.tracking.client import open_repository  # noqa: E402

EXPERIMENTS = 20


def fill(settings: Settings, runs: int) -> dict[str, set[str]]:
    """Runs spread over the experiments, each with a metric; returns each project's run ids."""
    repo = open_repository(settings)
    experiments = [(repo.create_experiment(f"e{i}", {"project": "AB"[i % 2]}).experiment_id, "AB"[i % 2])
                   for i in range(EXPERIMENTS)]
    now, by_project, rows = int(time.time() * 1000), {"A": set(), "B": set()}, []
    for i in range(runs):
        experiment, project = experiments[i % EXPERIMENTS]
        run_id = uuid.uuid4().hex
        by_project[project].add(run_id)
        rows.append(dict(run_id=run_id, experiment_id=int(experiment), name=f"run-{i}", status="finished",
                         user="bench", description="", start_time=now - i, end_time=now, heartbeat=now,
                         lifecycle_stage="active", parent_run_id=None, artifact_uri=""))
    with repo.db.write() as conn:
        conn.execute(insert(t.runs), rows)
    repo.log_metrics([(r["run_id"], "rmse", (i * 7919 % 1000) / 1000, 0, now) for i, r in enumerate(rows)],
                     ended_ok=True)  # stored as finished runs: their metrics come in after
    return by_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    watch = LoadWatch()
    home = WORK / "visibility"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings.load(home=str(home))
    store = AuthStore(settings.db_url)
    tokens = {}
    for name, admin in (("admin", True), ("viewer of A", False)):
        store.add_user(name.replace(" ", "-"), admin=admin)
        tokens[name] = store.create_token(name.replace(" ", "-")).text
    store.grant("viewer-of-A", "A", "viewer")
    runs = fill(settings, args.runs)
    server = start_server(home, 5813, auth=True)
    calls = {"first page": ("/api/runs/page", {"limit": 50}),
             "page by metric": ("/api/runs/page", {"limit": 50, "order_by": ["metrics.rmse"]}),
             "search 100": ("/api/runs/search", {"limit": 100})}
    times: dict[tuple[str, str], list[float]] = {(c, w): [] for c in calls for w in tokens}
    try:
        clients = {who: httpx.Client(base_url="http://127.0.0.1:5813", timeout=120,
                                     headers={"Authorization": f"Bearer {token}"}) for who, token in tokens.items()}
        for i in range(args.rounds + 5):  # the first 5 rounds warm up and are not counted
            order = list(clients.items()) if i % 2 else list(reversed(clients.items()))
            for call, (path, body) in calls.items():
                for who, client in order:
                    start = time.perf_counter()
                    answer = client.post(path, json=body)
                    elapsed = time.perf_counter() - start
                    check(answer.status_code == 200, f"{call} as {who}: HTTP {answer.status_code}")
                    if who == "viewer of A":
                        found = answer.json()
                        ids = {r["run_id"] for r in found["runs"]} if "runs" in found else \
                            set(found["data"]["run_id"])
                        check(ids <= runs["A"] and len(ids) == (100 if call == "search 100" else 50),
                              f"{call} as the viewer of A: {len(ids)} runs, {len(ids - runs['A'])} not in A")
                    if i >= 5:
                        times[(call, who)].append(elapsed)
    finally:
        server.terminate()
        server.wait(30)
    print(f"\n{args.runs:,} runs in {EXPERIMENTS} experiments (half in project A); median of {args.rounds} each\n")
    print(f"{'request':<16}{'admin (all)':>14}{'viewer of A':>14}{'ratio':>8}")
    for call in calls:
        admin, viewer = (statistics.median(times[(call, w)]) for w in tokens)
        print(f"{call:<16}{fmt(admin * 1000, 'ms'):>14}{fmt(viewer * 1000, 'ms'):>14}{viewer / admin:>7.2f}x")
    finish(watch)


if __name__ == "__main__":
    main()
