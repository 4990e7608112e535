"""``mloop analyze``: metrics by slice, calibration and fairness of a model on labelled data."""

from __future__ import annotations

import typer
from rich.table import Table

from mloop.cli._app import app, console
from mloop.errors import InvalidInputError


def _slice_arg(text: str) -> str | tuple[str, ...]:
    """``col`` or ``a,b`` (a cross of two columns)."""
    parts = tuple(p.strip() for p in text.split(","))
    if not all(parts) or len(parts) > 2:
        raise InvalidInputError(field="--slice", value=text, expected="COLUMN or COLUMN,COLUMN")
    return parts[0] if len(parts) == 1 else parts


@app.command("analyze")
def analyze_cmd(
    model: str = typer.Argument(..., help="Model URI, e.g. models:/churn@champion or runs:/<id>/model."),
    data: str = typer.Argument(..., help="Labelled data: a Parquet or CSV file."),
    label: str = typer.Option(..., "--label", "-l", help="The label column."),
    slices: list[str] = typer.Option(None, "--slice", "-s", help="A column, or two as A,B; repeat for more."),
    sensitive: list[str] = typer.Option(None, "--sensitive", help="A sensitive feature for fairness; repeatable."),
    task: str = typer.Option(None, "--task", help="classification or regression (inferred from the label)."),
    report: str = typer.Option(None, "--report", "-o", help="Also write the HTML report to this file."),
    no_attach: bool = typer.Option(False, "--no-attach", help="Do not store the analysis with the model version."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole analysis as JSON."),
) -> None:
    """Analyze MODEL on DATA; a registered version keeps the analysis for promotion gates (analysis.<key>)."""
    from mloop.analysis import analyze

    result = analyze(model, data, label=label, slices=[_slice_arg(s) for s in slices or []],
                     sensitive=list(sensitive or []), task=task, attach=not no_attach)
    if report:
        result.to_html(report)
    if as_json:
        print(result.to_json())
        return
    table = Table(title=f"{result.task} of {result.label}: {result.n_rows:,} rows (95% intervals)")
    names = list(result.overall["metrics"])
    for column in ["slice", "value", "count", *names]:
        table.add_column(column, overflow="fold")
    rows = [{"slice": "overall", "value": "", "count": result.overall["count"], "metrics": result.overall["metrics"]},
            *result.slices]
    for s in rows:
        table.add_row(s["slice"], s["value"], f"{s['count']:,}", *(_interval(s["metrics"][n]) for n in names))
    console.print(table)
    for key, value in result.summary.items():
        if ":" not in key and key not in names:
            console.print(f"{key}: {value:.4g}", highlight=False)


def _interval(m: dict) -> str:  # type: ignore[type-arg]
    if m["value"] is None:
        return "-"
    low, high = ("-" if m[k] is None else f"{m[k]:.3f}" for k in ("low", "high"))
    return f"{m['value']:.3f} [{low}, {high}]"


__all__ = ["analyze_cmd"]
