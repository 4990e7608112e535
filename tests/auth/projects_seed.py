"""Two projects, A and B, with a resource of every kind in each, on the store behind a live server with auth on.

Identities: 'ana' is a viewer in A only; 'carol' an editor in A and in default (so a check that fell back to the
default project would let her through); 'bob' a viewer in B only; 'root' a server admin (tests/auth/conftest.py).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from mloop.auth import AuthStore
from mloop.config import Settings
from mloop.registry import registry_for
from mloop.tracking.client import open_repository
from tests.auth.conftest import AuthServer

PROJECTS = ("A", "B")
GRANTS = {"ana": {"A": "viewer"}, "carol": {"A": "editor", "default": "editor"}, "bob": {"B": "viewer"}}

FLOW = '''
from mloop.flows import FlowSpec, step


class {name}(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''


@dataclass
class Seeded:
    server: AuthServer
    experiments: dict[str, str] = field(default_factory=dict)  # project -> experiment id
    runs: dict[str, list[str]] = field(default_factory=dict)  # project -> its runs' ids (flow runs not included)
    flows: dict[str, str] = field(default_factory=dict)  # project -> flow run id

    def get(self, who: str, url: str, **params: str) -> tuple[int, object]:
        with self.server.client(who) as client:
            answer = client.get(url, params=params)
        return answer.status_code, answer.json() if answer.content else None

    def post(self, who: str, path: str, body: object) -> tuple[int, object]:
        with self.server.client(who) as client:
            answer = client.post(path, json=body)
        return answer.status_code, answer.json() if answer.content else None


def add_identities(store: AuthStore, tokens: dict[str, str]) -> None:
    for name, roles in GRANTS.items():
        store.add_user(name)
        for project, role in roles.items():
            store.grant(name, project, role)
        tokens[name] = store.create_token(name).text


def seed(server: AuthServer, folder: Path, runs_per_project: dict[str, int], with_flows: bool = False) -> Seeded:
    """Experiments eA/eB, runs, models mA/mB with a version each deployed to 'staging' and waiting for approval
    into 'prod', monitors monA/monB, alert rules, automation rules, and (``with_flows``) a flow run in each
    project."""
    from sklearn.linear_model import LinearRegression

    from mloop.registry.packaging import save_model

    add_identities(server.store, server.tokens)
    settings: Settings = server.server.settings
    repo, registry = open_repository(settings), registry_for(settings)
    seeded = Seeded(server)
    model_folder = folder / "model"
    save_model(LinearRegression().fit([[1.0], [2.0]], [1.0, 2.0]), model_folder)
    # interleaved, so that a page of a filtered search would come back short if it were filtered after paging
    for project in PROJECTS:
        seeded.experiments[project] = repo.create_experiment(f"e{project}", {"project": project}).experiment_id
        seeded.runs[project] = []
    for i in range(max(runs_per_project.values())):
        for project in PROJECTS:
            if i < runs_per_project[project]:
                run = repo.create_run(seeded.experiments[project], f"r{project}{i}", "seed", {}, None, "")
                seeded.runs[project].append(run.run_id)
    registry.environments.create("staging")
    registry.environments.create("prod", requires_approval=True)
    for project in PROJECTS:
        registry.create_model(f"m{project}", tags={"project": project})
        registry.register(f"m{project}", str(model_folder), run_id=seeded.runs[project][0])
        registry.environments.deploy(f"m{project}", 1, "staging")
        registry.environments.deploy(f"m{project}", 1, "prod")  # waits for an approval
        _monitoring(settings, project)
    if with_flows:
        seeded.flows = {project: _flow_run(settings, folder, project) for project in PROJECTS}
    return seeded


def _monitoring(settings: Settings, project: str) -> None:
    from sqlalchemy import insert

    from mloop.automation import apply_rules
    from mloop.monitoring import create_monitor
    from mloop.monitoring._tables import alert_states
    from mloop.monitoring.alerts import apply_rules as apply_alert_rules
    from mloop.monitoring.alerts import load_rules
    from mloop.store.sql import open_database

    create_monitor(f"mon{project}", f"m{project}", settings=settings)
    apply_alert_rules(load_rules([{"name": f"alert{project}", "monitor": f"mon{project}", "metric": "rows",
                                   "above": 1}]), settings)
    with open_database(settings.db_url).write() as conn:  # the state a judged window leaves (firing)
        conn.execute(insert(alert_states).values(rule=f"alert{project}", key=f"mon{project}/1/primary//",
                                                 state="firing", streak=1, last_window=0, since=0, value=2.0))
    apply_rules([{"name": f"retrain{project}", "given": {"model": f"m{project}"}, "trigger": {"kind": "manual"},
                  "actions": [{"notify": {"message": "x"}}]}], settings=settings)


def _flow_run(settings: Settings, folder: Path, project: str) -> str:
    import mloop.flows as flows

    name = f"Flow{project}"
    open_repository(settings).create_experiment(name, {"project": project})  # the flow's runs go in here
    file = folder / f"{name.lower()}.py"
    file.write_text(textwrap.dedent(FLOW.format(name=name)))
    return str(flows.run(str(file), settings=settings).id)
