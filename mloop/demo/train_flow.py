"""The demo's training as a flow: prepare data, train candidates in a foreach, evaluate, register the best.

Run it yourself: ``mloop flow run mloop/demo/train_flow.py --data-dir DIR`` where DIR holds train.parquet and
valid.parquet (``mloop demo`` writes them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mloop.flows import FlowSpec, Parameter, current, step

MODEL_NAME = "trip-duration-flow"


def _rmse(model, frame) -> float:  # type: ignore[no-untyped-def]
    from mloop.demo.tracking import TARGET, features

    error = model.predict(features(frame)) - frame[TARGET].to_numpy()
    return float(np.sqrt(np.mean(error**2)))


class TripDurationFlow(FlowSpec):
    data_dir = Parameter(str, help="Folder with train.parquet and valid.parquet.")
    candidates = Parameter(list, default=["ridge", "hgb-fast", "hgb-slow"], help="Models to train (JSON list).")
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
        model.fit(features(self.train), self.train[TARGET])
        self.model, self.name, self.params = model, name, params
        self.val_rmse = _rmse(model, self.valid)
        current.log_metrics({"val_rmse": self.val_rmse})
        print(f"{name}: val_rmse {self.val_rmse:.3f}")
        self.next(self.choose)

    @step
    def choose(self, inputs):
        best = min(inputs, key=lambda i: i.val_rmse)
        self.scores = {i.name: i.val_rmse for i in inputs}
        self.best_name, self.best_model = best.name, best.model
        self.merge_artifacts(inputs, exclude=["model", "name", "params", "val_rmse"])
        self.next(self.evaluate)

    @step
    def evaluate(self):
        if self.fail_marker and Path(self.fail_marker).exists():
            raise ConnectionError("the evaluation data service is unavailable (injected failure)")
        self.report = {"model": self.best_name, "val_rmse": _rmse(self.best_model, self.valid),
                       "train_rmse": _rmse(self.best_model, self.train)}
        self.next(self.register)

    @step
    def register(self):
        from mloop.demo.tracking import features

        current.log_metrics({k: v for k, v in self.report.items() if k != "model"})
        version = current.log_model(self.best_model, MODEL_NAME, input_example=features(self.valid).head(5),
                                    tags={"flow_run": current.run_id, "candidate": self.best_name})
        self.version = version.version
        print(f"registered {MODEL_NAME} v{self.version} ({self.best_name})")
        self.next(self.end)

    @step
    def end(self):
        pass
