"""The demo's training as a flow: prepare the data, train the candidates in a foreach (each a tracked run),
choose, evaluate, and register the best few for the registry's rule to pick the champion from.

Run it yourself: ``mloop flow run mloop/demo/train_flow.py --data-dir DIR`` where DIR holds train.parquet and
valid.parquet (``mloop demo`` writes them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import mloop
from mloop.flows import FlowSpec, Parameter, current, step

MODEL_NAME = "trip-duration"  # what the register step names its versions; the demo's later steps read it
EXPERIMENT = "trip-duration"  # where the fit tasks track their candidate runs


def _errors(model, frame) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from mloop.demo.tracking import TARGET, features

    error = model.predict(features(frame)) - frame[TARGET].to_numpy()
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}


class TripDurationFlow(FlowSpec):
    data_dir = Parameter(str, help="Folder with train.parquet and valid.parquet.")
    candidates = Parameter(list, default=["ridge", "forest", "hgb-fast", "hgb-slow"],
                           help="Models to train (JSON list).")
    register_top = Parameter(int, default=3, help="How many of the best candidates to register.")
    session = Parameter(str, default="", help="Tag put on the candidates' runs (tags.demo_session).")
    fail_marker = Parameter(str, default="", help="If this file exists, evaluate fails (the demo's injected fault).")

    @step
    def start(self):
        import pandas as pd

        self.train = pd.read_parquet(Path(self.data_dir) / "train.parquet")
        self.valid = pd.read_parquet(Path(self.data_dir) / "valid.parquet")
        print(f"prepared {len(self.train):,} training and {len(self.valid):,} validation trips")
        self.next(self.fit, foreach="candidates")

    @step
    def fit(self):
        from mloop.demo.tracking import TARGET, candidates, features

        name, model, params = next(c for c in candidates() if c[0] == self.input)
        # A tracked run of its own (a child of this task's run): params, data used, metrics.
        with mloop.start_run(EXPERIMENT, name=name, params=params,
                             tags={"demo": "true", "demo_session": self.session}) as run:
            run.log_input(self.train, name="trips-train", context="train")
            run.log_input(self.valid, name="trips-validation", context="validation")
            model.fit(features(self.train), self.train[TARGET])
            for split, frame in (("train", self.train), ("val", self.valid)):
                run.log_metrics({f"{split}_{k}": v for k, v in _errors(model, frame).items()})
            self.candidate_run = run.run_id
        self.model, self.name, self.val_rmse = model, name, _errors(model, self.valid)["rmse"]
        print(f"{name}: val_rmse {self.val_rmse:.3f}")
        self.next(self.choose)

    @step
    def choose(self, inputs):
        ranked = sorted(inputs, key=lambda i: i.val_rmse)
        self.scores = {i.name: i.val_rmse for i in ranked}
        self.shortlist = [(i.candidate_run, i.name, i.model) for i in ranked[: self.register_top]]
        self.best_name, self.best_model = ranked[0].name, ranked[0].model
        self.merge_artifacts(inputs, exclude=["model", "name", "val_rmse", "candidate_run"])
        self.next(self.evaluate)

    @step
    def evaluate(self):
        if self.fail_marker and Path(self.fail_marker).exists():
            raise ConnectionError("the evaluation data service is unavailable (injected failure)")
        self.report = {"model": self.best_name, "val_rmse": _errors(self.best_model, self.valid)["rmse"],
                       "train_rmse": _errors(self.best_model, self.train)["rmse"]}
        self.next(self.register)

    @step
    def register(self):
        from mloop.demo.tracking import features
        from mloop.registry import log_model_to_run

        current.log_metrics({k: v for k, v in self.report.items() if k != "model"})
        example, training = features(self.valid).head(5), features(self.train)
        self.versions = {}
        for run_id, name, model in self.shortlist:  # each version's run is its candidate's run
            version = log_model_to_run(current.settings, run_id, model, MODEL_NAME, input_example=example,
                                       training_data=training,  # which columns may be null
                                       tags={"demo": "true", "run_name": name, "flow_run": current.run_id})
            self.versions[name] = version.version
            print(f"registered {MODEL_NAME} v{version.version} ({name})")
        self.next(self.end)

    @step
    def end(self):
        pass
