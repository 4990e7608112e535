"""Demo step: register the best runs, pick the champion with a rule, load it by alias and predict."""

from __future__ import annotations

from rich.table import Table

from mloop.demo.runner import DemoContext
from mloop.demo.tracking import EXPERIMENT, TARGET, features
from mloop.registry import load_model, log_model_to_run, registry_for
from mloop.registry.rules import Rule

MODEL_NAME = "trip-duration"
TOP = 3
RULE = Rule(
    name="trip-duration-champion",
    description="The most accurate trip-duration model that is not overfitted becomes the champion.",
    given=f"name = '{MODEL_NAME}' and tags.demo = 'true'",
    when="metrics.val_rmse < 2.5 and metrics.train_rmse > 0.5",  # accurate, and not memorizing the training set
    alias="champion",
    select=("metrics.val_rmse asc", "newest"),
)


def run(ctx: DemoContext) -> None:
    registry = registry_for(ctx.settings)
    mine = f"tags.demo = 'true' and tags.demo_session = '{ctx.state['session']}'"  # this demo's runs
    ranked = ctx.client.search_runs(EXPERIMENT, filter=mine, order_by="metrics.val_rmse", limit=TOP)
    example = features(ctx.train).head(5)
    for run_id, run_name in zip(ranked["run_id"], ranked["name"], strict=True):
        version = log_model_to_run(ctx.settings, run_id, ctx.state["models"][run_id], MODEL_NAME,
                                   input_example=example, tags={"demo": "true", "run_name": run_name})
        ctx.console.print(f"registered {MODEL_NAME} v{version.version} from run {run_name} "
                          f"(val_rmse {version.metrics['val_rmse']:.3f}, flavor {version.flavor})")
    registry.rules.save(RULE)
    selection = registry.rules.apply(RULE.name)
    ctx.console.print(selection.explain(), highlight=False)
    model = load_model(f"models:/{MODEL_NAME}@champion", client=registry)
    rows = ctx.valid.head(5)
    predicted = model.predict(features(rows).to_dict(orient="records"))
    table = Table(title=f"models:/{MODEL_NAME}@champion (v{model.version}) on 5 validation trips")
    for column in ("zone", "hour", "weather", "km", "actual min", "predicted min"):
        table.add_column(column, justify="right")
    for (_, row), guess in zip(rows.iterrows(), predicted, strict=True):
        table.add_row(str(row["zone_id"]), str(row["hour"]), str(row["weather"]), f"{row['distance_km']:.1f}",
                      f"{row[TARGET]:.1f}", f"{guess:.1f}")
    ctx.console.print(table)
    ctx.state["model_name"] = MODEL_NAME
    ctx.console.print(f"Look next: [bold]mloop models versions {MODEL_NAME}[/], "
                      f"[bold]mloop models select {RULE.name}[/], [bold]mloop models audit[/].")
