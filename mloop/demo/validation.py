"""Demo step: infer the training schema, catch a corrupted batch, and measure drift in the changed last month."""

from __future__ import annotations

import numpy as np
from rich.table import Table

from mloop.demo.runner import DemoContext
from mloop.demo.tracking import FEATURES, TARGET, features


def run(ctx: DemoContext) -> None:
    from mloop.validation import drift, infer_schema, performance_by_window, validate

    folder = ctx.home / "validation"
    schema = infer_schema(ctx.train[[*FEATURES, TARGET]])
    schema_path = schema.save(folder / "train_schema.yaml")
    ctx.console.print(f"Inferred the training schema ({len(schema)} columns, e.g. hour in "
                      f"[{schema['hour'].min}, {schema['hour'].max}], weather one of {schema['weather'].categories})"
                      f" -> {schema_path}")
    _attach_to_champion(ctx, schema.select(FEATURES))

    batch = features(ctx.valid.head(1000))
    # rows picked by position: a small --trips leaves fewer validation trips than the default's thousand
    batch.loc[batch.index[[17, len(batch) * 2 // 5]], "hour"] = 77  # a broken clock upstream
    batch.loc[batch.index[len(batch) // 4], "weather"] = "hail"  # a category never seen in training
    batch = batch.drop(columns=["distance_km"])  # and a column the producer stopped sending
    result = validate(batch, schema.select(FEATURES))
    table = Table(title=f"Corrupted batch of {len(batch):,} rows: {len(result.errors)} errors")
    for column in ("severity", "column", "check", "message"):
        table.add_column(column, overflow="fold")
    for v in result.violations:
        table.add_row(f"[red]{v.severity}[/]", v.column, v.check, v.message)
    ctx.console.print(table)

    report = drift(ctx.train, ctx.live, columns=FEATURES, target=TARGET)
    html = report.to_html(folder / "drift_train_vs_last_month.html", title="Trips: training months vs last month")
    report.to_json(folder / "drift_train_vs_last_month.json")
    table = Table(title=f"Drift, training months vs the changed last month: {len(report.drifted_columns)} of "
                        f"{len(report.columns)} columns drifted")
    for column in ("column", "role", "method", "statistic", "threshold", "drifted"):
        table.add_column(column, justify="left" if column in ("column", "role", "method") else "right")
    for c in report.sorted():
        table.add_row(c.column, c.role, c.method, f"{c.statistic:.3f}", f"{c.threshold:g}",
                      "[bold red]yes[/]" if c.drifted else "no")
    ctx.console.print(table)
    ctx.console.print(f"HTML report ({len(html.encode()) / 1e6:.1f} MB, self-contained): "
                      f"{folder / 'drift_train_vs_last_month.html'}")

    best = ctx.state.get("models", {}).get(ctx.state.get("best_run_id"))
    if best is not None:
        recent = ctx.trips[ctx.trips["event_timestamp"] >= ctx.valid["event_timestamp"].min()]
        scored = recent.assign(predicted=best.predict(features(recent)))
        weeks = performance_by_window(scored, target=TARGET, prediction="predicted", time="event_timestamp",
                                      window="7D", metric="mae")
        worst = weeks.loc[weeks["degraded"]]
        ctx.console.print(f"Concept drift: MAE per week {np.round(weeks['mae'].to_numpy(), 2).tolist()} "
                          f"(baseline {weeks['baseline'].iloc[0]:.2f}); {len(worst)} week(s) degraded by >20%.")
    ctx.state["schema"] = schema
    ctx.state["drift"] = report
    ctx.console.print("Look next: [bold]mloop validate DATA --schema "
                      f"{schema_path}[/], [bold]mloop drift REFERENCE CURRENT --html report.html[/].")


def _attach_to_champion(ctx: DemoContext, schema) -> None:  # type: ignore[no-untyped-def]
    """Store the schema and profile with the champion model version, where serving and monitoring find them."""
    name = ctx.state.get("model_name")
    if not name:
        return
    from mloop.registry import registry_for
    from mloop.validation import attach_to_model_version, profile

    registry = registry_for(ctx.settings)
    version = registry.get_alias(name, "champion")
    attach_to_model_version(name, version.version, schema=schema, profile=profile(features(ctx.train)),
                            registry=registry)
    ctx.console.print(f"Stored the training schema and profile with {name} v{version.version} (champion).")
