"""Demo step: train several models as tracked runs and rank them by validation RMSE."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from mloop.demo.runner import DemoContext

EXPERIMENT = "trip-duration"
FEATURES = ["zone_id", "hour", "weather", "distance_km"]
TARGET = "duration_min"


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns, exactly as serving will receive them."""
    return frame[FEATURES].copy()


def candidates() -> list[tuple[str, Any, dict[str, Any]]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def pipeline(model: Any) -> Pipeline:
        prep = ColumnTransformer([
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["weather", "zone_id"]),
            ("num", StandardScaler(), ["hour", "distance_km"]),
        ])
        return Pipeline([("prep", prep), ("model", model)])

    return [
        ("ridge", pipeline(Ridge(alpha=1.0)), {"algorithm": "ridge", "alpha": 1.0}),
        ("forest", pipeline(RandomForestRegressor(n_estimators=40, max_depth=12, n_jobs=2, random_state=0)),
         {"algorithm": "random_forest", "n_estimators": 40, "max_depth": 12}),
        ("hgb-fast", pipeline(HistGradientBoostingRegressor(learning_rate=0.2, max_iter=100, random_state=0)),
         {"algorithm": "hist_gradient_boosting", "learning_rate": 0.2, "max_iter": 100}),
        ("hgb-slow", pipeline(HistGradientBoostingRegressor(learning_rate=0.05, max_iter=200, random_state=0)),
         {"algorithm": "hist_gradient_boosting", "learning_rate": 0.05, "max_iter": 200}),
    ]


def run(ctx: DemoContext) -> None:
    x_train, y_train = features(ctx.train), ctx.train[TARGET]
    x_valid, y_valid = features(ctx.valid), ctx.valid[TARGET]
    models = {}
    # Earlier demos may have left runs in this home: this one's tables and choices look at its own runs only.
    session = ctx.state.setdefault("session", uuid.uuid4().hex[:12])
    mine = f"tags.demo = 'true' and tags.demo_session = '{session}'"
    for name, model, params in candidates():
        tags = {"demo": "true", "demo_session": session}
        with ctx.client.start_run(EXPERIMENT, name=name, params=params, tags=tags) as run:
            run.log_input(ctx.train, name="trips-train", context="train")
            run.log_input(ctx.valid, name="trips-validation", context="validation")
            model.fit(x_train, y_train)
            for split, x, y in (("train", x_train, y_train), ("val", x_valid, y_valid)):
                error = model.predict(x) - y.to_numpy()
                run.log_metrics({f"{split}_rmse": float(np.sqrt(np.mean(error**2))),
                                 f"{split}_mae": float(np.mean(np.abs(error)))})
            models[run.run_id] = model
    ranked = ctx.client.search_runs(EXPERIMENT, filter=mine, order_by="metrics.val_rmse")
    table = Table(title=f"Runs of '{EXPERIMENT}', best first")
    for column in ("run", "algorithm", "val_rmse", "val_mae", "train_rmse", "run_id"):
        table.add_column(column, justify="right" if column.startswith(("val", "train")) else "left")
    for _, row in ranked.iterrows():
        table.add_row(row["name"], str(row["params.algorithm"]), f"{row['metrics.val_rmse']:.3f}",
                      f"{row['metrics.val_mae']:.3f}", f"{row['metrics.train_rmse']:.3f}", row["run_id"])
    ctx.console.print(table)
    best = ctx.client.best_run(EXPERIMENT, "val_rmse", filter=mine)
    ctx.state["best_run_id"] = best.run_id
    ctx.state["models"] = models
    ctx.console.print(f"Best run: [bold green]{best.name}[/] {best.run_id} (val_rmse {best.metrics['val_rmse']:.3f})")
    ctx.console.print(f"Look next: [bold]mloop runs list {EXPERIMENT}[/], "
                      f"[bold]mloop runs show {best.run_id[:8]}...[/], or [bold]mloop server[/] for the REST API.")
