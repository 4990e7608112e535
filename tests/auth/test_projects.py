"""Projects for every resource, over a live server with auth on: a caller lists, searches and reads only what
is in the projects where it holds a role, pages stay full, and a role in one project gives nothing in another."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.auth.conftest import ROLES, AuthServer
from tests.auth.projects_seed import Seeded, seed

MLFLOW = "/api/2.0/mlflow"


@pytest.fixture
def projects(auth_server: AuthServer, tmp_path) -> Iterator[Seeded]:
    """Two projects with a resource of every kind each, flows included; on SQLite and on PostgreSQL."""
    yield seed(auth_server, tmp_path, {"A": 2, "B": 2}, with_flows=True)


def _names(items: Any, key: str = "name") -> set[str]:
    return {item[key] for item in items}


def _search(s: Seeded, who: str, **body: Any) -> set[str]:
    status, found = s.post(who, "/api/runs/search", body)
    assert status == 200, found
    return set(found["data"].get("run_id", []))


def test_each_listing_shows_only_the_callers_projects(projects: Seeded) -> None:
    s, a_runs, b_runs = projects, set(projects.runs["A"]), set(projects.runs["B"])
    b_everything = b_runs | {projects.flows["B"]}
    assert _names(s.get("ana", "/api/experiments")[1]) == {"eA", "FlowA"}
    assert {"eA", "eB", "FlowA", "FlowB"} <= _names(s.get("root", "/api/experiments")[1])

    seen = {r["run_id"] for r in s.post("ana", "/api/runs/page", {"limit": 1000})[1]["runs"]}
    assert a_runs | {projects.flows["A"]} <= seen and not seen & b_everything
    all_runs = {r["run_id"] for r in s.post("root", "/api/runs/page", {"limit": 1000})[1]["runs"]}
    assert b_everything <= all_runs  # the admin sees every project

    assert _names(s.get("ana", "/api/registry/models")[1]) == {"mA"}
    audit = s.get("ana", "/api/registry/audit")[1]
    assert audit and {e["model"] for e in audit} == {"mA"}
    assert {d["name"] for d in s.get("ana", "/api/registry/environments/staging/history", limit="1")[1]} == {"mA"}
    assert {r["name"] for r in s.get("ana", "/api/registry/approvals")[1]} == {"mA"}
    assert {r["name"] for r in s.get("root", "/api/registry/approvals")[1]} == {"mA", "mB"}
    assert _names(s.get("ana", "/api/monitors")[1]) == {"monA"}
    assert {a["rule"] for a in s.get("ana", "/api/alerts")[1]} == {"alertA"}
    assert {a["rule"] for a in s.get("root", "/api/alerts")[1]} == {"alertA", "alertB"}
    assert _names(s.get("ana", "/api/automation/rules")[1]) == {"retrainA"}
    for rule in ("retrainA", "retrainB"):
        assert s.post("root", f"/api/automation/rules/{rule}/fire", {})[0] == 202
    assert {f["rule"] for f in s.get("ana", "/api/automation/firings")[1]} == {"retrainA"}
    # the flow run of B is the newest: a filter after the limit would leave ana nothing
    assert [r["run_id"] for r in s.get("ana", "/api/flows/runs", limit="1")[1]] == [projects.flows["A"]]
    assert s.get("bob", "/api/flows/runs")[1][0]["run_id"] == projects.flows["B"]

    # MLflow's searches
    found = s.post("ana", f"{MLFLOW}/experiments/search", {"max_results": 100})[1]["experiments"]
    assert _names(found) == {"eA", "FlowA"}
    found = s.post("ana", f"{MLFLOW}/runs/search", {"experiment_ids": list(projects.experiments.values())})[1]
    assert {r["info"]["run_id"] for r in found["runs"]} == a_runs
    assert _names(s.get("ana", f"{MLFLOW}/registered-models/search")[1]["registered_models"]) == {"mA"}
    assert _names(s.get("ana", f"{MLFLOW}/model-versions/search")[1]["model_versions"]) == {"mA"}
    assert _names(s.get("bob", f"{MLFLOW}/model-versions/search")[1]["model_versions"]) == {"mB"}


def test_a_viewer_of_a_cannot_read_b_by_id_by_search_or_through_mlflow(projects: Seeded) -> None:
    """The exploit: ana, a viewer in A, asks for B's run, model, feature project, flow, monitor and rule."""
    s = projects

    def reads(p: str) -> list[tuple[str, dict[str, str]]]:
        run, flow, model = s.runs[p][0], s.flows[p], f"m{p}"
        return [(f"/api/runs/{run}", {}), (f"/api/runs/{run}/metrics/x/history", {}),
                (f"/api/flows/runs/{flow}", {}), (f"/api/quality/runs/{run}", {}),
                (f"/api/registry/models/{model}", {}), (f"/api/registry/models/{model}/versions/1", {}),
                ("/api/registry/resolve", {"uri": f"models:/{model}/1"}),
                (f"/api/experiments/by-name/e{p}", {}), (f"/api/monitors/mon{p}/series", {}),
                (f"/api/automation/models/{model}/timeline", {}),
                ("/api/features/definitions", {"project": p}), ("/api/features/definitions/v", {"project": p}),
                (f"{MLFLOW}/runs/get", {"run_id": run}), (f"{MLFLOW}/metrics/get-history",
                                                          {"run_id": run, "metric_key": "x"}),
                (f"{MLFLOW}/experiments/get-by-name", {"experiment_name": f"e{p}"}),
                (f"{MLFLOW}/registered-models/get", {"name": model}),
                (f"{MLFLOW}/model-versions/get", {"name": model, "version": "1"}),
                ("/api/2.0/mlflow-artifacts/artifacts", {"path": f"{s.experiments[p]}/{run}/artifacts"}),
                (f"/api/2.0/mlflow-artifacts/artifacts/{s.experiments[p]}/{run}/artifacts/x", {})]

    refused = [path for path, params in reads("B") if s.get("ana", path, **params)[0] != 403]
    assert not refused, f"ana read B's {refused}"
    answered = [path for path, params in reads("A") if s.get("ana", path, **params)[0] in (401, 403)]
    assert not answered, f"ana was refused A's {answered}"

    # by search: naming B's experiment, or B's run in a filter, finds nothing
    eb, rb = s.experiments["B"], s.runs["B"][0]
    for body in ({"experiment_ids": [eb]}, {"filter": f"attributes.run_id = '{rb}'"},
                 {"filter": f"attributes.experiment_id = {eb}"}):
        assert _search(s, "ana", **body) == set(), body
    found = s.post("ana", f"{MLFLOW}/runs/search", {"experiment_ids": [eb]})[1]
    assert found.get("runs", []) == []
    assert rb in _search(s, "bob", experiment_ids=[eb])


def test_logged_models_of_another_project_are_neither_listed_nor_read_nor_changed(projects: Seeded) -> None:
    """MLflow's logged models live in the artifact store: their reads and writes check their experiment's
    project in the handler."""
    s = projects
    made = {p: s.post("root", f"{MLFLOW}/logged-models", {"experiment_id": s.experiments[p], "name": f"lm{p}"})
            for p in ("A", "B")}
    ids = {p: answer[1]["model"]["info"]["model_id"] for p, answer in made.items()}
    found = s.post("ana", f"{MLFLOW}/logged-models/search", {"experiment_ids": list(s.experiments.values())})[1]
    assert [m["info"]["model_id"] for m in found["models"]] == [ids["A"]]
    assert s.get("ana", f"{MLFLOW}/logged-models/{ids['B']}")[0] == 403
    assert s.get("ana", f"{MLFLOW}/logged-models/{ids['A']}")[0] == 200
    with s.server.client("carol") as carol:  # an editor in A and default
        tags = {"tags": [{"key": "k", "value": "v"}]}
        assert carol.patch(f"{MLFLOW}/logged-models/{ids['B']}/tags", json=tags).status_code == 403
        assert carol.patch(f"{MLFLOW}/logged-models/{ids['A']}/tags", json=tags).status_code == 200
        assert carol.delete(f"{MLFLOW}/logged-models/{ids['B']}").status_code == 403
    assert s.post("carol", f"{MLFLOW}/logged-models", {"experiment_id": s.experiments["B"]})[0] == 403


def test_studies_are_listed_and_read_by_their_runs_project(sqlite_auth_server: AuthServer, tmp_path) -> None:
    import mloop

    s = seed(sqlite_auth_server, tmp_path, {"A": 1, "B": 1})
    settings = sqlite_auth_server.server.settings
    mloop.configure(home=settings.home, db_url=settings.db_url, tracking_uri="")
    try:
        for project in ("A", "B"):
            mloop.tune(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2, study=f"s{project}",
                       experiment=f"e{project}")
    finally:
        mloop.configure()
    assert _names(s.get("ana", "/api/tuning/studies")[1]) == {"sA"}
    assert _names(s.get("root", "/api/tuning/studies")[1]) == {"sA", "sB"}
    assert s.get("ana", "/api/tuning/studies/sA")[0] == 200
    assert s.get("ana", "/api/tuning/studies/sB")[0] == 403
    assert s.get("ana", "/api/tuning/studies/sB/importances")[0] == 403


def test_writes_name_their_project_in_mlflow_bodies_and_rest_bodies(projects: Seeded) -> None:
    """carol edits A and default: a check that fell back to default for what a body names would let her write
    into B."""
    s, rb, ra = projects, projects.runs["B"][0], projects.runs["A"][0]
    into_b = [(f"{MLFLOW}/runs/set-tag", {"run_id": rb, "key": "k", "value": "v"}),
              (f"{MLFLOW}/runs/log-metric", {"run_id": rb, "key": "m", "value": 1.0, "timestamp": 1}),
              (f"{MLFLOW}/experiments/set-experiment-tag", {"experiment_id": s.experiments["B"], "key": "k",
                                                             "value": "v"}),
              (f"{MLFLOW}/registered-models/set-tag", {"name": "mB", "key": "k", "value": "v"}),
              (f"{MLFLOW}/experiments/create", {"name": "sneaky", "tags": [{"key": "project", "value": "B"}]}),
              ("/api/monitors/monB/run", {}), ("/api/automation/rules/retrainB/fire", {}),
              ("/api/monitors", {"name": "sneaky", "model": "mB"})]
    let_through = [path for path, body in into_b if s.post("carol", path, body)[0] != 403]
    assert not let_through, f"carol wrote into B through {let_through}"
    assert s.post("carol", f"{MLFLOW}/runs/set-tag", {"run_id": ra, "key": "k", "value": "v"})[0] == 200
    with s.server.client("carol") as client:
        rules = {"rules": [{"name": "sneaky", "monitor": "monB", "metric": "rows", "above": 1}]}
        assert client.put("/api/alerts/rules", json=rules).status_code == 403


def test_paging_stays_correct_with_filtering(sqlite_auth_server: AuthServer, tmp_path) -> None:
    s = seed(sqlite_auth_server, tmp_path, {"A": 7, "B": 5})
    a_runs = set(s.runs["A"])
    pages = [s.post("ana", "/api/runs/page", {"offset": offset, "limit": 3})[1] for offset in (0, 3, 6)]
    assert [len(p["runs"]) for p in pages] == [3, 3, 1] and {p["total"] for p in pages} == {7}
    assert {r["run_id"] for p in pages for r in p["runs"]} == a_runs
    assert len(_search(s, "ana", limit=3)) == 3 and _search(s, "ana", limit=3) <= a_runs

    body: dict[str, Any] = {"experiment_ids": list(s.experiments.values()), "max_results": 3}
    sizes, seen = [], set()
    while True:
        found = s.post("ana", f"{MLFLOW}/runs/search", body)[1]
        sizes.append(len(found["runs"]))
        seen |= {r["info"]["run_id"] for r in found["runs"]}
        if "next_page_token" not in found:
            break
        body["page_token"] = found["next_page_token"]
    assert sizes == [3, 3, 1] and seen == a_runs


def test_role_matrix_in_another_project(sqlite_auth_server: AuthServer, tmp_path) -> None:
    """Each role held in B alone, on B's monitors, rules, feature project and MLflow resources: what the role
    allows passes the check, less is refused, and the same role held in A gives nothing in B."""
    s = seed(sqlite_auth_server, tmp_path, {"A": 1, "B": 1})
    store, tokens = sqlite_auth_server.store, sqlite_auth_server.tokens
    for role in ROLES:
        for project in ("A", "B"):
            name = f"{role}-{project}"
            store.add_user(name)
            store.grant(name, project, role)
            tokens[name] = store.create_token(name).text
    rb = s.runs["B"][0]
    calls = [("viewer", "GET", "/api/monitors/monB/series", None, {}),
             ("viewer", "GET", "/api/features/definitions", None, {"project": "B"}),
             ("viewer", "GET", "/api/automation/models/mB/timeline", None, {}),
             ("viewer", "GET", f"{MLFLOW}/runs/get", None, {"run_id": rb}),
             ("viewer", "GET", f"{MLFLOW}/registered-models/get", None, {"name": "mB"}),
             ("editor", "POST", "/api/monitors/monB/run", {}, {}),
             ("editor", "POST", "/api/automation/rules/retrainB/fire", {}, {}),
             ("editor", "POST", "/api/features/materialize", {"views": ["none"]}, {"project": "B"}),
             ("editor", "POST", f"{MLFLOW}/runs/set-tag", {"run_id": rb, "key": "k", "value": "v"}, {}),
             ("editor", "PATCH", f"{MLFLOW}/registered-models/update", {"name": "mB", "description": "d"}, {}),
             ("editor", "PUT", "/api/alerts/rules",
              {"rules": [{"name": "x", "monitor": "monB", "metric": "rows", "above": 1}]}, {}),
             ("maintainer", "POST", f"{MLFLOW}/registered-models/alias",
              {"name": "mB", "alias": "champion", "version": "1"}, {}),
             ("maintainer", "POST", "/api/automation/rules/retrainB/resume", {}, {}),
             ("maintainer", "POST", "/api/automation/rules/retrainB/pause", {}, {})]  # last: it stops the firing
    wrong = []
    for need, method, path, body, params in calls:
        for role in ROLES:
            for project in ("A", "B"):
                with sqlite_auth_server.client(f"{role}-{project}") as client:
                    status = client.request(method, path, json=body, params=params).status_code
                allowed = project == "B" and ROLES.index(role) >= ROLES.index(need)
                if (status == 403) == allowed or status == 401:
                    wrong.append(f"{method} {path} as {role} in {project}: {status}")
    assert not wrong, wrong


def test_the_flow_repository_routes_show_only_the_callers_projects(projects: Seeded) -> None:
    """The routes a flow's orchestrator reads through (``/api/flows/rows``, ``/tasks/<id>``) answer like the UI's
    ``/api/flows/runs``: carol, an editor in A and in default, neither lists nor reads B's flow."""
    s = projects
    listed = s.get("carol", "/api/flows/rows")
    assert listed[0] == 200 and {r["run_id"] for r in listed[1]} == {s.flows["A"]}
    assert {r["run_id"] for r in s.get("root", "/api/flows/rows")[1]} == {s.flows["A"], s.flows["B"]}
    for project, allowed in (("A", True), ("B", False)):
        task = s.get("root", f"/api/flows/runs/{s.flows[project]}/task-rows")[1][0]["task_id"]
        status = s.get("carol", f"/api/flows/tasks/{task}")[0]
        assert (status == 200) if allowed else (status == 403), (project, status)
    # nor write into it: the orchestrator's writes name their runs in the body
    task_b = s.get("root", f"/api/flows/runs/{s.flows['B']}/task-rows")[1][0]["task_id"]
    finish = {"records": [{"kind": "finish_task", "task_id": task_b, "status": "failed"}]}
    assert s.post("carol", "/api/flows/records", finish)[0] == 403
    assert s.post("carol", "/api/flows/heartbeat", {"run_ids": [s.flows["B"]]})[0] == 403
    run_in_b = {"run_id": "f" * 32, "experiment_id": s.experiments["B"], "flow_name": "Sneaky", "file": "x.py",
                "executor": "local", "user": "carol"}
    assert s.post("carol", "/api/flows/runs", run_in_b)[0] == 403
    assert s.get("root", f"/api/flows/runs/{s.flows['B']}/task-rows")[1][0]["status"] != "failed"


def test_the_tags_that_route_live_traffic_need_a_maintainer(projects: Seeded) -> None:
    """``serving.canary = "1:100"`` sends every request of a served model to version 1: a promotion by another
    name. An editor, who may tag a model but not move its alias, must not be able to set or clear it."""
    s = projects
    with s.server.client("carol") as carol:
        attempts = [carol.patch("/api/registry/models/mA", json={"tags": {"serving.canary": "1:100"}}),
                    carol.post(f"{MLFLOW}/registered-models/set-tag",
                               json={"name": "mA", "key": "serving.shadow", "value": "1"}),
                    carol.delete("/api/registry/models/mA/tags/serving.canary"),
                    carol.request("DELETE", f"{MLFLOW}/registered-models/delete-tag",
                                  json={"name": "mA", "key": "serving.shadow"})]
        assert [a.status_code for a in attempts] == [403] * 4, [a.text for a in attempts]
        assert "maintainer" in attempts[0].json()["message"]
        assert carol.patch("/api/registry/models/mA", json={"tags": {"team": "eta"}}).status_code == 200
    tags = s.get("root", "/api/registry/models/mA")[1]["tags"]  # type: ignore[index]
    assert "serving.canary" not in tags and "serving.shadow" not in tags and tags["team"] == "eta"
    with s.server.client("root") as root:
        assert root.patch("/api/registry/models/mA", json={"tags": {"serving.canary": "1:10"}}).status_code == 200
