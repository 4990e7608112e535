"""Demo step: the candidates the training flow fitted, each a tracked run, ranked by validation RMSE.

This module also holds what the training flow and the later steps share: the features, the target and the
candidate models.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.table import Table

from mloop.demo.runner import DemoContext
from mloop.demo.train_flow import EXPERIMENT  # the flow names the experiment; this step reads it

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
    # The flow tagged its candidates' runs with this demo's session: earlier demos' runs in this home stay out.
    mine = f"tags.demo = 'true' and tags.demo_session = '{ctx.state['session']}'"
    ranked = ctx.client.search_runs(EXPERIMENT, filter=mine, order_by="metrics.val_rmse")
    table = Table(title=f"Runs of '{EXPERIMENT}' from the flow's fit tasks, best first")
    for column in ("run", "algorithm", "val_rmse", "val_mae", "train_rmse", "run_id", "parent (fit task)"):
        table.add_column(column, justify="right" if column.startswith(("val", "train")) else "left")
    for _, row in ranked.iterrows():
        table.add_row(row["name"], str(row["params.algorithm"]), f"{row['metrics.val_rmse']:.3f}",
                      f"{row['metrics.val_mae']:.3f}", f"{row['metrics.train_rmse']:.3f}", row["run_id"],
                      str(row["parent_run_id"])[:12])
    ctx.console.print(table)
    best = ctx.client.best_run(EXPERIMENT, "val_rmse", filter=mine)
    ctx.state["best_run_id"] = best.run_id
    datasets = ", ".join(f"{d.name} ({context}, {d.rows:,} rows, {d.digest[:8]})"
                         for d, context in ctx.client.repo.list_inputs(best.run_id))
    ctx.console.print(f"Best run: [bold green]{best.name}[/] {best.run_id} (val_rmse {best.metrics['val_rmse']:.3f}); "
                      f"data used: {datasets}")
    ctx.console.print(f"Look next: [bold]mloop runs list {EXPERIMENT}[/], "
                      f"[bold]mloop runs show {best.run_id[:8]}...[/], or [bold]mloop server[/] for the REST API.")
