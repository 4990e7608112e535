"""The study through the CLI a user types and the REST API the UI reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

import mloop
from mloop.config import Settings
from tests.cli.test_tracking_cli import cli
from tests.server.conftest import serve
from tests.tuning.conftest import SPACE


def test_mloop_tune_runs_a_search_from_a_module_and_a_yaml_space(tmp_path: Path, objectives: Any) -> None:
    (tmp_path / "space.yaml").write_text("x: {type: float, low: -10, high: 10}\nkind: [a, b]\n")
    out = cli("tune", "objectives.py:quadratic", "--space", "space.yaml", "--n-trials", "6", "--study", "cli").stdout
    assert "study cli: 6 complete" in out and "best objective = " in out
    assert cli("studies", "cli").stdout.count("complete") == 6

    bad = cli("tune", "objectives.py:missing", "--n-trials", "2", check=False)
    assert bad.returncode == 2 and "objective" in bad.stderr and "missing" in bad.stderr
    bad_space = cli("tune", "objectives:quadratic", "--space", "space.yaml", "--n-trials", "2", "--direction", "up",
                    check=False)
    assert bad_space.returncode == 2 and "direction" in bad_space.stderr and "Traceback" not in bad_space.stderr


def test_the_api_lists_studies_and_a_study_s_trials(objectives: Any) -> None:
    study = mloop.tune(objectives.planted, {"x": ("float", -10, 10)}, n_trials=6, study="api")
    mloop.tune(objectives.quadratic, SPACE, n_trials=3, study="other", direction="maximize")
    for server in serve(Settings.load()):
        with httpx.Client(base_url=server.url, timeout=30) as api:
            listed = {s["name"]: s for s in api.get("/api/tuning/studies").json()}
            assert set(listed) == {"api", "other"} and listed["other"]["direction"] == "maximize"
            assert listed["api"]["run_id"] == study.run_id and sum(listed["api"]["trials"].values()) == 6
            body = api.get("/api/tuning/studies/api").json()
            assert [t["number"] for t in body["trials"]] == list(range(6))
            first = body["trials"][0]
            assert set(first["params"]) == {"x"} and first["run_id"] and first["start"].endswith("+00:00")
            assert len(first["intermediate"]) >= 1
            assert set(api.get("/api/tuning/studies/api/importances").json()) <= {"x"}
            missing = api.get("/api/tuning/studies/nope")
            assert missing.status_code == 404 and "nope" in missing.text


def test_an_objective_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    from mloop.cli.tune import load_objective
    from mloop.errors import InvalidInputError

    for target, says in (("nowhere.py:f", "existing file"), ("no_such_module:f", "imports"), ("f", "module:function"),
                         ("os:not-a-name", "module:function"), ("os:sep", "a function 'sep'")):
        try:
            load_objective(target)
        except InvalidInputError as exc:
            assert exc.field == "objective" and says in str(exc), (target, str(exc))
        else:
            raise AssertionError(f"{target} was accepted")
