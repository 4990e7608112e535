"""``mloop validate``, ``mloop drift``, ``mloop infer-schema``, ``mloop profile``: exit codes made for CI.

Exit codes: 0 clean, 1 violations (validate) or drift (drift), 2 usage error or unreadable input.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mloop.cli._app import app, console
from mloop.errors import InvalidInputError


def _source(path: str) -> Any:
    """A Profile for a profile JSON file, else the path itself (Parquet, CSV, JSON lines...)."""
    from mloop.validation.profile import Profile

    p = Path(path)
    if p.suffix == ".json" and p.is_file():
        try:
            head = json.loads(p.read_text())
        except json.JSONDecodeError:
            head = None
        if isinstance(head, dict) and head.get("kind") == "mloop.profile":
            return Profile.from_dict(head)
    return path


_STORED = re.compile(r"^(?:models:/(?P<name>[^/]+)/(?P<version>\d+)|runs:/(?P<run>[0-9a-f]{32})/(?P<dataset>[^/]+))$")


def _stored(text: str, what: str, field: str) -> Any:
    """The ``what`` ("schema" or "profile") stored for ``models:/NAME/VERSION`` (the version's training data) or
    ``runs:/RUN_ID/DATASET`` (a data set the run logged); None when ``text`` is neither. Read through the server
    when MLOOP_TRACKING_URI is set."""
    if not text.startswith(("models:", "runs:")):
        return None
    found = _STORED.match(text)
    if found is None:
        raise InvalidInputError(field=field, value=text, expected="models:/NAME/VERSION or runs:/RUN_ID/DATASET "
                                                                  "(a 32-hex run id)")
    from mloop.validation import attach

    if found["name"]:
        load = attach.model_schema if what == "schema" else attach.model_profile
        return load(found["name"], int(found["version"]))
    from mloop.tracking.client import TrackingClient

    load = attach.load_run_schema if what == "schema" else attach.load_run_profile
    return load(TrackingClient(), found["run"], found["dataset"])


def _pairs(values: list[str] | None, field: str) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InvalidInputError(field=field, value=item, expected="COLUMN=VALUE")
        out[key.strip()] = value.strip()
    return out


@app.command("validate")
def validate_cmd(
    data: str = typer.Argument(..., help="Parquet/CSV file or folder to check."),
    schema: str = typer.Option(None, "--schema", "-s", help="Schema file (YAML or JSON), e.g. from infer-schema, "
                               "or a stored one: models:/NAME/VERSION (training schema), runs:/RUN_ID/DATASET."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail too."),
) -> None:
    """Check DATA against a schema; exit 1 when a check of severity error fails."""
    from mloop.validation import load_schema, validate

    if not schema:
        raise InvalidInputError(field="--schema", value=None,
                                expected="a schema file (make one with: mloop infer-schema DATA -o schema.yaml)")
    stored = _stored(schema, "schema", "--schema")
    result = validate(data, stored if stored is not None else load_schema(schema))
    failed = not result.passed or (strict and bool(result.warnings))
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        if result.violations:
            table = Table(title=f"{len(result.violations)} violation(s) in {result.n_rows:,} rows")
            for column in ("severity", "column", "check", "rows", "message"):
                table.add_column(column, overflow="fold")
            for v in result.violations:
                color = "red" if v.severity == "error" else "yellow"
                table.add_row(f"[{color}]{v.severity}[/]", v.column, v.check, f"{v.count:,}", v.message)
            console.print(table)
        console.print("[bold red]FAILED[/]" if failed else "[bold green]passed[/]",
                      f"{len(result.errors)} error(s), {len(result.warnings)} warning(s)", highlight=False)
    raise typer.Exit(1 if failed else 0)


@app.command("infer-schema")
def infer_schema_cmd(
    data: str = typer.Argument(..., help="Parquet/CSV file or folder."),
    out: str = typer.Option("schema.yaml", "--out", "-o", help="Where to write the schema (.yaml or .json)."),
    range_slack: float = typer.Option(0.0, "--range-slack", help="Widen numeric ranges by this share of their width."),
) -> None:
    """Infer a schema from DATA and save it for editing and for ``mloop validate``."""
    from mloop.validation import infer_schema

    path = infer_schema(data, range_slack=range_slack).save(out)
    console.print(f"wrote {path}")


@app.command("profile")
def profile_cmd(
    data: str = typer.Argument(..., help="Parquet/CSV file or folder."),
    out: str = typer.Option("profile.json", "--out", "-o", help="Where to write the profile JSON."),
    reference: str = typer.Option(None, "--reference", "-r", help="A reference profile whose bins to reuse."),
) -> None:
    """Compute a compact, mergeable profile of DATA (drift can be measured against it without raw data)."""
    from mloop.validation.profile import Profile, profile

    ref = Profile.load(reference) if reference else None
    path = profile(data, reference=ref).save(out)
    console.print(f"wrote {path}")


@app.command("drift")
def drift_cmd(
    reference: str = typer.Argument(..., help="Reference data (Parquet/CSV), a profile JSON, or a stored profile: "
                                    "models:/NAME/VERSION (its training profile), runs:/RUN_ID/DATASET."),
    current: str = typer.Argument(..., help="Current data (Parquet/CSV) or a profile JSON built on the reference."),
    html: str = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    columns: str = typer.Option(None, "--columns", help="Comma-separated columns (default: all but datetimes)."),
    method: list[str] = typer.Option(None, "--method", help="COLUMN=METHOD, e.g. fare=psi (repeatable)."),
    threshold: list[str] = typer.Option(None, "--threshold", help="COLUMN=VALUE (repeatable)."),
    fail_on: str = typer.Option("column", "--fail-on", help="Exit 1 when any 'column' drifts, or only on 'dataset'."),
) -> None:
    """Measure drift of CURRENT against REFERENCE; exit 1 on drift."""
    from mloop.validation import drift

    if fail_on not in ("column", "dataset"):
        raise InvalidInputError(field="--fail-on", value=fail_on, expected="column or dataset")
    try:
        thresholds = {k: float(v) for k, v in _pairs(threshold, "--threshold").items()}
    except ValueError:
        raise InvalidInputError(field="--threshold", value=threshold, expected="COLUMN=NUMBER") from None
    stored = _stored(reference, "profile", "reference")
    result = drift(stored if stored is not None else _source(reference), _source(current),
                   columns=[c.strip() for c in columns.split(",")] if columns else None,
                   methods=_pairs(method, "--method"), thresholds=thresholds)
    if html:
        result.to_html(html)
    if as_json:
        print(result.to_json())
    else:
        table = Table(title=f"Drift: {len(result.drifted_columns)} of {len(result.columns)} columns "
                            f"({result.drift_share:.0%}); dataset drift: {'yes' if result.dataset_drift else 'no'}")
        for column in ("column", "method", "statistic", "p-value", "effect", "threshold", "drifted"):
            table.add_column(column, justify="left" if column in ("column", "method") else "right")
        for c in result.sorted():
            table.add_row(c.column, c.method, _f(c.statistic), _f(c.p_value), _f(c.effect_size), f"{c.threshold:g}",
                          "[bold red]yes[/]" if c.drifted else "no")
        console.print(table)
        for c in result.sorted():
            if c.note:
                console.print(f"note on {c.column}: {c.note}", markup=False, soft_wrap=True)
        if html:
            console.print(f"report: {html}")
    drifted = result.dataset_drift if fail_on == "dataset" else result.any_drift
    raise typer.Exit(1 if drifted else 0)


def _f(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.4g}"
