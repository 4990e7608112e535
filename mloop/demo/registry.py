"""Demo step: the versions the training flow registered, the champion picked by a rule, loaded by alias."""

from __future__ import annotations

from rich.table import Table

from mloop.demo.runner import DemoContext
from mloop.demo.tracking import TARGET, features
from mloop.demo.train_flow import MODEL_NAME
from mloop.registry import load_model, registry_for
from mloop.registry.rules import Rule

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
    mine = set(ctx.state["models"])  # this demo's candidate runs (earlier demos' versions stay in the registry)
    for version in registry.list_versions(MODEL_NAME):
        if version.run_id in mine:
            lineage = registry.lineage(MODEL_NAME, version.version)
            ctx.console.print(f"{MODEL_NAME} v{version.version}: run {version.tags.get('run_name')} (val_rmse "
                              f"{version.metrics['val_rmse']:.3f}, flavor {version.flavor}), trained in flow "
                              f"run {lineage['flow']['run_id'][:8]}", highlight=False)
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
