"""``mloop features``: plan, apply, list, describe, materialize, materialize-incremental, online."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

from mloop.cli._app import app, console
from mloop.cli._render import frame_table, settings_from
from mloop.errors import InvalidInputError

features_app = typer.Typer(help="Feature store: plan, apply, list, describe, materialize, online.",
                           no_args_is_help=True)
app.add_typer(features_app, name="features")
HOME = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop).")
PROJECT = typer.Option("default", "--project", help="Feature-store project.")
REPO = typer.Option(None, "--repo", help="Feature repository: a features.py file or a folder (default: ./features.py "
                                         "when it exists).")
VIEWS = typer.Option(None, "--view", help="Only this feature view (repeat for several).")


def _store(home: str | None, project: str, repo: str | None, required: bool = False):  # type: ignore[no-untyped-def]
    from mloop.features import FeatureStore

    if repo is None and Path("features.py").is_file():
        repo = "features.py"
    if repo is None and required:
        raise InvalidInputError(field="repo", value=None, expected="a feature repository: --repo path/features.py "
                                                                   "(or run where features.py is)")
    return FeatureStore(repo, project=project, settings=settings_from(home))


def _when(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except ValueError as exc:
        raise InvalidInputError(field=field, value=value,
                                expected="an ISO date or time like 2026-01-31T12:00Z") from exc
    return (stamp if stamp.tzinfo else stamp.tz_localize("UTC")).to_pydatetime()


@features_app.command()
def plan(repo: str = typer.Argument(None, help="features.py or a folder"), project: str = PROJECT,
         home: str = HOME) -> None:
    """Show what apply would change in the registry (new, changed, unchanged definitions)."""
    console.print(str(_store(home, project, repo, required=True).plan()), highlight=False)


@features_app.command()
def apply(repo: str = typer.Argument(None, help="features.py or a folder"), project: str = PROJECT,
          home: str = HOME) -> None:
    """Validate the definitions and store a new immutable version of each changed one."""
    result = _store(home, project, repo, required=True).apply()
    console.print(str(result), highlight=False)
    console.print("[green]applied[/]" if result.has_changes else "nothing to apply")


@features_app.command("list")
def list_(kind: str = typer.Option(None, "--kind", help="entity, feature_view, on_demand_feature_view, "
                                                         "feature_service"),
          search: str = typer.Option("", "--search", help="Text in the name or description."),
          tag: str = typer.Option(None, "--tag", help="key or key=value"),
          entity: str = typer.Option(None, "--entity", help="Feature views over this entity."),
          as_json: bool = typer.Option(False, "--json"), project: str = PROJECT, home: str = HOME) -> None:
    """Definitions in the registry (latest versions), filtered by kind, text, tag or entity."""
    store = _store(home, project, None)
    found = store.search(search, tag, entity)
    if kind:
        found = [v for v in found if v.kind == kind]
    if as_json:
        console.print_json(json.dumps([v.to_dict() for v in found]))
        return
    labels = {"feature_view": "view", "on_demand_feature_view": "on-demand", "feature_service": "service"}
    rows = [{"kind": labels.get(v.kind, v.kind), "name": v.name, "version": v.version,
             "features": ", ".join(f["name"] for f in v.spec.get("schema", [])) or ", ".join(v.spec.get("features",
                                                                                                       [])),
             "entities": ", ".join(v.spec.get("entities", [])), "owner": v.spec.get("owner", ""),
             "description": v.spec.get("description", "")} for v in found]
    columns = ["kind", "name", "version", "features", "entities", "owner", "description"]
    console.print(frame_table(pd.DataFrame(rows, columns=columns), title=f"{len(rows)} definitions"))


@features_app.command()
def describe(name: str, version: int = typer.Option(None, "--version"), as_json: bool = typer.Option(False, "--json"),
             project: str = PROJECT, home: str = HOME) -> None:
    """One definition: its spec, versions, watermark and per-feature statistics."""
    info = _store(home, project, None).describe(name, version)
    if as_json:
        console.print_json(json.dumps(info, default=str))
        return
    spec = info["spec"]
    table = Table(title=f"{info['kind']} {name} v{info['version']}", show_header=False)
    table.add_row("versions", ", ".join(f"v{v}" for v in info["versions"]))
    table.add_row("created", f"{datetime.fromtimestamp(info['created'] / 1000, tz=UTC):%Y-%m-%d %H:%M:%S} "
                             f"by {info['creator']}")
    for key, value in spec.items():
        if key == "schema":
            value = ", ".join(f"{f['name']}: {f['dtype']}" for f in value)
        elif key == "function":
            value = value.strip().splitlines()[0] + " ..."
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    if "watermark" in info:
        table.add_row("watermark", str(info["watermark"] or "never materialized"))
    console.print(table)
    if info.get("statistics"):
        stats = pd.DataFrame(info["statistics"]).drop(columns=["version"])
        for column in ("min", "max"):
            stats[column] = [_short(v) for v in stats[column]]
        console.print(frame_table(stats, title="statistics at the last materialization"))


def _short(value: object) -> str:
    try:
        return f"{float(str(value)):.6g}"
    except ValueError:
        return str(value)


@features_app.command()
def materialize(start: str = typer.Option(None, "--start", help="Start of the event-time window (ISO; UTC "
                                                                "when it has no zone)."),
                end: str = typer.Option(..., "--end", help="End of the event-time window (ISO)."),
                views: list[str] = VIEWS, batch_rows: int = typer.Option(50_000, "--batch-rows"),
                repo: str = REPO, project: str = PROJECT, home: str = HOME) -> None:
    """Write the latest value per entity in [start, end] to the online store (resumable)."""
    store = _store(home, project, repo)
    results = store.materialize(_when(start, "start"), _when(end, "end"), views or None, batch_rows=batch_rows)
    _report(results)


@features_app.command("materialize-incremental")
def materialize_incremental(end: str = typer.Option(None, "--end", help="End (ISO, default now)."),
                            views: list[str] = VIEWS, repo: str = REPO, project: str = PROJECT,
                            home: str = HOME) -> None:
    """Materialize from each view's watermark up to --end (default now)."""
    results = _store(home, project, repo).materialize_incremental(_when(end, "end"), views or None)
    _report(results)


def _report(results: list) -> None:  # type: ignore[type-arg]
    for r in results:
        resumed = f", resumed at batch {r.resumed_from + 1}" if r.resumed_from else ""
        console.print(f"[bold]{r.view}[/] v{r.version}: {r.rows:,} entities written in {r.batches} batch(es) "
                      f"{r.seconds:.2f} s{resumed}; window {r.start.isoformat() if r.start else 'beginning'} "
                      f"-> {r.end.isoformat()}", highlight=False)
    if not results:
        console.print("no feature views to materialize")


@features_app.command()
def online(features: list[str] = typer.Argument(None, help="References like view:feature"),
           service: str = typer.Option(None, "--service"),
           entity: list[str] = typer.Option(..., "--entity", help="key=value[,value...] (repeat per key)"),
           as_of: str = typer.Option(None, "--as-of", help="Replay a past moment: an ISO time with its offset "
                                     "(2026-10-25T02:30+01:00, ...Z); without one it is read in --timezone, "
                                     "else UTC. Values newer than it are withheld (status after_as_of)."),
           timezone: str = typer.Option(None, "--timezone", help="IANA zone (Europe/Paris) of an --as-of "
                                        "written without offset."),
           repo: str = REPO, project: str = PROJECT, home: str = HOME) -> None:
    """Read the latest online values for some entities (as of now, or as of --as-of)."""
    entities = {}
    for item in entity:
        key, sep, values = item.partition("=")
        if not sep:
            raise InvalidInputError(field="entity", value=item, expected="key=value[,value...]")
        entities[key] = [int(v) if v.lstrip("-").isdigit() else v for v in values.split(",")]
    when = _instant(as_of, "--as-of", timezone) if as_of is not None else None
    result = _store(home, project, repo).online(features or None, service=service, entities=entities, as_of=when)
    out = result.to_json()
    if when is not None:
        out["as_of"] = when.astimezone(UTC).isoformat()
    console.print_json(json.dumps(out, default=str))


def _instant(text: str, option: str, zone: str | None) -> datetime:
    """An ISO time as an aware datetime; a wall time without offset is placed in ``zone`` (default UTC),
    and refused when that zone skips it (spring forward) or has it twice (fall back)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(field=option, value=text, expected="an ISO 8601 time such as 2026-10-25T02:30+01:00 "
                                "or 2026-10-25T00:30Z") from None
    try:
        tz = ZoneInfo(zone) if zone is not None else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(field="--timezone", value=zone, expected="an IANA time zone such as Europe/Paris "
                                "or America/New_York") from None
    if when.tzinfo is not None:
        return when
    first, second = when.replace(tzinfo=tz, fold=0), when.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        kind = "happens twice" if first.astimezone(UTC) < second.astimezone(UTC) else "does not exist"
        offsets = sorted({_offset(first), _offset(second)})
        raise InvalidInputError(f"{option}: got {text!r}, which {kind} in {zone} (clocks change that day); "
                                f"expected a time with its offset, e.g. {text}{offsets[0]} or {text}{offsets[1]}.",
                                field=option, value=text, expected=f"an unambiguous time in {zone}")
    return first


def _offset(when: datetime) -> str:
    return when.isoformat()[-6:]
