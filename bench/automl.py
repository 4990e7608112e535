"""AutoML benchmark: mloop.automl's registered model against FLAML run alone and a default LightGBM.

    python bench/automl.py [--budget 20] [--jobs 1]

Data sets that scikit-learn ships (no download): breast_cancer (binary), wine (3 classes), diabetes
(regression). All three contenders see the same train / holdout split (mloop's own, 20% held out, seed 0) and
are scored alike on the holdout: ROC AUC (one-vs-rest for wine) or R². FLAML alone searches its default
families for the same budget in this process (mloop depends on it optionally, so no separate virtualenv);
mloop's wall time includes tracking the trials, refitting the winner, profiling the training set and
registering the model. Exits 1 when the registered model, loaded back without trust, predicts other than the
model that was scored, or scores no better than the trivial baseline (majority class / mean).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LoadWatch, check, finish  # noqa: E402

DATASETS = {"breast_cancer": "load_breast_cancer", "wine": "load_wine", "diabetes": "load_diabetes"}


def load(name: str) -> Any:
    from sklearn import datasets

    return getattr(datasets, DATASETS[name])(as_frame=True).frame


def score(model: Any, X: Any, y: Any, task: str) -> float:
    from mloop.automl.scores import holdout_scores

    scores = holdout_scores(model, X, y, task)
    return scores["roc_auc"] if task == "classification" else scores["r2"]


def baseline(y_train: Any, X_test: Any, y_test: Any, task: str) -> float:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    dummy = DummyClassifier(strategy="prior") if task == "classification" else DummyRegressor()
    return score(dummy.fit(np.zeros((len(y_train), 1)), y_train), np.zeros((len(y_test), 1)), y_test, task)


def run_mloop(frame: Any, budget: float, jobs: int, name: str, X_test: Any, y_test: Any, task: str) -> dict:
    import mloop

    started = time.perf_counter()
    result = mloop.automl(frame, target="target", time_budget=budget, name=name, n_jobs=jobs)
    wall = time.perf_counter() - started
    loaded = mloop.load_model(result.uri)  # no trusted=True
    native = loaded.native
    same = np.array_equal(np.asarray(loaded.predict(X_test)), np.asarray(native.predict(X_test))) \
        if hasattr(native, "predict") else True
    check(same, f"{name}: the registered model loaded back predicts other than the scored model")
    held = result.holdout["roc_auc"] if task == "classification" else result.holdout["r2"]
    return {"score": held, "wall": wall,
            "detail": f"{result.learner}, {result.n_trials} trials, search {result.search_seconds:.1f} s"}


def run_flaml(X_train: Any, y_train: Any, X_test: Any, y_test: Any, task: str, budget: float, jobs: int) -> dict:
    from flaml import AutoML

    log = Path(tempfile.mkdtemp()) / "trials.jsonl"
    started = time.perf_counter()
    search = AutoML()
    search.fit(X_train, y_train, task=task, time_budget=budget, verbose=0, seed=0, n_jobs=jobs,
               metric="roc_auc_ovr" if task == "classification" and y_train.nunique() > 2 else "auto",
               log_file_name=str(log), log_type="all")
    wall = time.perf_counter() - started
    trials = sum(1 for line in log.read_text().splitlines() if '"learner"' in line)
    return {"score": score(search, X_test, y_test, task), "wall": wall,
            "detail": f"{search.best_estimator}, {trials} trials"}


def run_lightgbm(X_train: Any, y_train: Any, X_test: Any, y_test: Any, task: str, jobs: int) -> dict:
    import lightgbm

    started = time.perf_counter()
    cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
    model = cls(n_jobs=jobs, verbose=-1).fit(X_train, y_train)
    wall = time.perf_counter() - started
    return {"score": score(model, X_test, y_test, task), "wall": wall, "detail": "defaults"}


def bench_one(name: str, budget: float, jobs: int) -> list[tuple[str, str, dict]]:
    from mloop.automl._data import prepare, split

    frame = load(name)
    prepared = prepare(frame, "target", None)
    X_train, X_test, y_train, y_test = split(prepared, 0.2, 0)  # the split mloop.automl makes itself
    task = prepared.task
    rows = [("mloop.automl (registered)", name, run_mloop(frame, budget, jobs, name, X_test, y_test, task)),
            ("FLAML alone", name, run_flaml(X_train, y_train, X_test, y_test, task, budget, jobs)),
            ("LightGBM defaults", name, run_lightgbm(X_train, y_train, X_test, y_test, task, jobs))]
    floor = baseline(y_train, X_test, y_test, task)
    check(rows[0][2]["score"] > floor + 0.05, f"{name}: mloop's model scores {rows[0][2]['score']:.3f}, "
                                              f"no better than the trivial baseline {floor:.3f}")
    rows.append(("trivial baseline", name, {"score": floor, "wall": 0.0, "detail": "majority / mean"}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0, help="seconds for each search (mloop and FLAML)")
    parser.add_argument("--jobs", type=int, default=1, help="threads per trial for every contender")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ["MLOOP_HOME"] = tempfile.mkdtemp(prefix="mloop-bench-automl-")
    watch = LoadWatch()
    import flaml  # noqa: F401  (its import, several seconds, is not part of either search's time)

    print(f"budget {args.budget:g} s per search, {args.jobs} thread(s) per trial; score: holdout ROC AUC "
          "(classification, one-vs-rest for wine) or R² (diabetes)\n")
    print(f"| {'data set':<14} | {'contender':<26} | {'score':>7} | {'wall time':>9} | detail")
    print(f"|{'-' * 16}|{'-' * 28}|{'-' * 9}|{'-' * 11}|{'-' * 30}")
    for name in DATASETS:
        for contender, data, r in bench_one(name, args.budget, args.jobs):
            print(f"| {data:<14} | {contender:<26} | {r['score']:>7.4f} | {r['wall']:>7.1f} s | {r['detail']}",
                  flush=True)
    print()
    finish(watch)


if __name__ == "__main__":
    main()
