"""mloop.tune: trials as child runs, pruning, resuming, the best model registered, results as a frame."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import optuna
import pytest

import mloop
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.tuning import list_studies, load_study
from tests.tuning.conftest import SPACE


def test_each_trial_is_a_child_run_with_its_params_and_metric(objectives: Any) -> None:
    study = mloop.tune(objectives.quadratic, SPACE, n_trials=12, study="quad", experiment="search")

    frame = study.trials_frame()
    assert list(frame.columns[:4]) == ["number", "state", "value", "run_id"]
    assert str(frame["start"].dt.tz) == "UTC" and (frame["duration_s"] > 0).all()
    assert len(frame) == 12 and (frame["state"] == "complete").all()
    runs = mloop.search_runs("search")
    children = runs[runs["parent_run_id"] == study.run_id].set_index("run_id")
    assert len(children) == 12 and len(runs) == 13  # the study's run and its trials
    for _, row in frame.iterrows():
        child = children.loc[row["run_id"]]
        assert child["params.x"] == pytest.approx(row["params.x"]) and child["params.kind"] == row["params.kind"]
        assert child["metrics.objective"] == pytest.approx(row["value"])
        assert child["status"] == "finished" and child["tags.mloop.tune.trial"] == str(row["number"])
    best = mloop.get_run(study.best_run_id)
    assert best.metrics["objective"] == pytest.approx(frame["value"].min()) == pytest.approx(study.best_value)
    study_run = mloop.get_run(study.run_id)
    assert study_run.tags["mloop.tune.best_run"] == study.best_run_id and study_run.tags["mloop.tune.complete"] == "12"


def test_calling_tune_again_resumes_the_study_up_to_n_trials(objectives: Any) -> None:
    mloop.tune(objectives.quadratic, SPACE, n_trials=5, study="more")
    study = mloop.tune(objectives.quadratic, SPACE, n_trials=8, study="more")
    assert list(study.trials_frame()["number"]) == list(range(8))
    again = mloop.tune(objectives.quadratic, SPACE, n_trials=8, study="more")  # done: runs nothing
    assert len(again.trials_frame()) == 8
    assert len(load_study("more").trials_frame()) == 8
    summary = {s["name"]: s for s in list_studies()}["more"]
    assert summary["trials"]["complete"] == 8 and summary["best_value"] == pytest.approx(study.best_value)


def test_the_pruner_stops_the_trials_that_report_bad_values(objectives: Any) -> None:
    pruner = optuna.pruners.ThresholdPruner(upper=50.0)  # the planted bad trials report ~100 from step 0
    sampler = optuna.samplers.RandomSampler(seed=3)
    study = mloop.tune(objectives.planted, {"x": ("float", -10, 10)}, n_trials=16, study="prune",
                       sampler=sampler, pruner=pruner)

    frame = study.trials_frame()
    bad, good = frame[frame["params.x"] < 0], frame[frame["params.x"] >= 0]
    assert len(bad) >= 3 and len(good) >= 3
    assert (bad["state"] == "pruned").all() and (good["state"] == "complete").all()
    runs = mloop.search_runs("prune").set_index("run_id")
    for run_id in bad["run_id"]:
        assert runs.loc[run_id, "status"] == "killed" and runs.loc[run_id, "tags.mloop.tune.state"] == "pruned"
        assert [m.step for m in mloop.client().metric_history(run_id, "objective")] == [0]  # stopped at once
    good_steps = [m.step for m in mloop.client().metric_history(good["run_id"].iloc[0], "objective")]
    assert good_steps[:10] == list(range(10))


def test_register_best_registers_the_model_of_the_best_trial() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

    def fit(trial: Any) -> float:
        model = DecisionTreeClassifier(**trial.params).fit(X_train, y_train)
        trial.log_model(model)
        return float(model.score(X_test, y_test))

    study = mloop.tune(fit, {"max_depth": ("int", 1, 8), "criterion": ["gini", "entropy"], "random_state": 0},
                       n_trials=3, direction="maximize", study="cancer")
    version = study.register_best("cancer-model")

    assert version.run_id == study.best_run_id and version.version == 1
    assert version.tags["mloop.tune.study"] == "cancer"
    loaded = mloop.load_model("models:/cancer-model/1")
    assert (loaded.predict(X_test) == y_test).mean() == pytest.approx(study.best_value)


def test_register_best_without_a_logged_model_says_how_to_log_one(objectives: Any) -> None:
    study = mloop.tune(objectives.quadratic, SPACE, n_trials=2, study="nomodel")
    with pytest.raises(NotFoundError, match="trial.log_model"):
        study.register_best("m")


def test_a_failing_objective_fails_its_trial_and_run_and_raises() -> None:
    def broken(trial: Any) -> float:
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        mloop.tune(broken, {"x": ("int", 1, 3)}, n_trials=3, study="broken")
    study = load_study("broken")
    frame = study.trials_frame()
    assert list(frame["state"]) == ["fail"]
    run = mloop.get_run(frame["run_id"][0])
    assert run.status == "failed" and run.tags["mloop.tune.error"] == "RuntimeError: diverged"
    assert mloop.get_run(study.run_id).status == "failed"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"n_trials": 0}, "n_trials"),
    ({"n_trials": None}, "n_trials"),
    ({"timeout": -1}, "timeout"),
    ({"direction": "down"}, "direction"),
    ({"parallel": 0}, "parallel"),
    ({"backend": "threads"}, "backend"),
    ({"study": ""}, "study"),
])
def test_bad_arguments_are_refused_with_the_field(objectives: Any, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        mloop.tune(objectives.quadratic, SPACE, **{"n_trials": 3, "study": "s", **kwargs})
    assert info.value.field == field


def test_bad_objective_results_and_conflicting_resumes_are_clear(objectives: Any) -> None:
    with pytest.raises(InvalidInputError, match="return value"):
        mloop.tune(lambda t: "low", {"x": ("int", 1, 3)}, n_trials=1, study="text")
    with pytest.raises(InvalidInputError, match="metric 'objective'"):
        mloop.tune(lambda t: {"loss": 1.0}, {"x": ("int", 1, 3)}, n_trials=1, study="dict")
    with pytest.raises(InvalidInputError, match="study"):
        mloop.tune(lambda t: 1.0, {"x": ("int", 1, 3)}, n_trials=1)  # a lambda has no name to resume by
    mloop.tune(objectives.quadratic, SPACE, n_trials=1, study="dir")
    with pytest.raises(ConflictError, match="minimizes"):
        mloop.tune(objectives.quadratic, SPACE, n_trials=2, study="dir", direction="maximize")
    with pytest.raises(InvalidInputError, match="top of a module"):
        mloop.tune(lambda t: 1.0, {"x": ("int", 1, 3)}, n_trials=2, study="lam", parallel=2)
    with pytest.raises(NotFoundError, match="dir"):
        load_study("nope")
    mloop.configure(tracking_uri="http://127.0.0.1:9")  # a study needs the database, not a tracking server
    with pytest.raises(InvalidInputError) as info:
        mloop.tune(objectives.quadratic, SPACE, n_trials=1, study="remote")
    assert info.value.field == "tracking_uri"


def test_importing_mloop_does_not_import_optuna_and_its_absence_names_the_extra() -> None:
    code = ("import sys, mloop; assert 'optuna' not in sys.modules; sys.modules['optuna'] = None\n"
            "try:\n    mloop.tune(lambda t: 1.0, {'x': ('int', 1, 2)}, n_trials=1, study='s')\n"
            "except mloop.errors.MissingDependencyError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'mloop[tune]'" in out


def test_tune_gives_back_the_users_optuna_log_level(objectives: Any) -> None:
    """tune() quiets Optuna's per-trial lines while it searches; the user's own level is theirs afterwards."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        mloop.tune(objectives.quadratic, SPACE, n_trials=2, study="levels")
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
        with pytest.raises(ConflictError):  # refused inside the quiet part: the level comes back all the same
            mloop.tune(objectives.quadratic, SPACE, n_trials=2, study="levels", direction="maximize")
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(before)
