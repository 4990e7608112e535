"""``mloop monitor`` (create, run, list, series) and ``mloop alerts`` (apply, list, history, silence)."""

from __future__ import annotations

import json

import typer

from mloop.cli._app import app, console
from mloop.cli._render import frame_table, settings_from

monitor_app = typer.Typer(help="Monitors of served models: create, run, list, series.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")
alerts_app = typer.Typer(help="Alert rules on monitors: apply, list, history, silence.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")

HOME = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop).")


@monitor_app.command("create")
def create(
    name: str = typer.Argument(..., help="The monitor's name."),
    model: str = typer.Option(..., "--model", "-m", help="The registered model it watches."),
    window: str = typer.Option("1h", "--window", "-w", help="Window length: 5m, 15m, 1h, 1d..."),
    task: str = typer.Option(None, "--task", help="classification or regression (default: from the traffic)."),
    slices: list[str] = typer.Option([], "--slice", help="An input column to measure performance by; repeat."),
    segments: list[str] = typer.Option([], "--segment", help="A named segment to measure performance on, "
                                       "NAME=CONDITION over the inputs (e.g. \"long=km > 10\"); repeat."),
    lateness: str = typer.Option("2m", "--lateness", help="How long after a window closes rows may still come."),
    start: str = typer.Option(None, "--start", help="Where the first window begins (ISO time with a zone)."),
    home: str = HOME,
) -> None:
    """Create (or update) a monitor of MODEL's prediction log."""
    from mloop.monitoring import create_monitor

    monitor = create_monitor(name, model, window=window, task=task, slices=slices, lateness=lateness, start=start,
                             segments=_named_segments(segments), settings=settings_from(home))
    console.print(f"monitor [bold]{monitor.name}[/] watches {monitor.model} in {monitor.window_seconds}-second "
                  "windows; compute them with: mloop monitor run " + monitor.name, highlight=False)


def _named_segments(texts: list[str]) -> dict[str, str]:
    """``NAME=CONDITION`` options as a mapping; the condition is parsed by ``create_monitor``."""
    from mloop.errors import InvalidInputError

    found: dict[str, str] = {}
    for text in texts:
        name, sep, condition = text.partition("=")
        if not sep or not name.strip() or not condition.strip():
            raise InvalidInputError(field="--segment", value=text, expected="NAME=CONDITION, e.g. long=km > 10")
        if name.strip() in found:
            raise InvalidInputError(field="--segment", value=text, expected="each segment name once")
        found[name.strip()] = condition.strip()
    return found


@monitor_app.command("run")
def run(
    names: list[str] = typer.Argument(None, help="Monitors to run (default: all)."),
    window_start: str = typer.Option(None, "--window-start", help="Compute (again) only the window beginning at "
                                     "this ISO time with a zone, with the labels logged so far; names one monitor."),
    as_json: bool = typer.Option(False, "--json", help="Print what each run did as JSON."),
    home: str = HOME,
) -> None:
    """Compute every closed window not computed yet, then judge the alert rules on them."""
    from mloop.errors import InvalidInputError
    from mloop.monitoring import list_monitors, run_monitor

    if window_start is not None and len(names or []) != 1:
        raise InvalidInputError(field="--window-start", value=window_start,
                                expected="one monitor named with it (mloop monitor run NAME --window-start T)")
    settings = settings_from(home)
    reports = []
    for name in names or [m["name"] for m in list_monitors(settings)]:
        report = run_monitor(name, window_start=window_start, settings=settings)
        reports.append({"monitor": name, "windows": report.windows, "recomputed": report.recomputed,
                        "rows": report.rows, "alerts": [e.message for e in report.alerts]})
    if as_json:
        print(json.dumps(reports, indent=2))
        return
    for r in reports:
        console.print(f"{r['monitor']}: {r['windows']} new window(s), {r['recomputed']} recomputed, "
                      f"{r['rows']:,} rows", highlight=False)
        for message in r["alerts"]:
            console.print(f"  {message}", highlight=False, markup=False)


@monitor_app.command("list")
def list_cmd(home: str = HOME) -> None:
    """Every monitor with its model, window and watermark."""
    import pandas as pd

    from mloop.monitoring import list_monitors

    found = pd.DataFrame(list_monitors(settings_from(home)),
                         columns=["name", "model", "window_seconds", "watermark", "updated"])
    for column in ("watermark", "updated"):
        found[column] = pd.to_datetime(found[column].clip(lower=0), unit="ms", utc=True)
    console.print(frame_table(found, title="monitors"))


@monitor_app.command("series")
def series_cmd(
    name: str = typer.Argument(..., help="The monitor."),
    metrics: list[str] = typer.Option([], "--metric", help="Metrics to show (repeat); default: all."),
    column: str = typer.Option(None, "--column", help="Only this input column ('' for window-wide figures)."),
    version: str = typer.Option(None, "--version", help="Only this model version."),
    last: int = typer.Option(50, "--last", help="Show the last N rows."),
    as_csv: bool = typer.Option(False, "--csv", help="Print every row as CSV."),
    home: str = HOME,
) -> None:
    """The monitor's windowed figures."""
    from mloop.monitoring import series

    found = series(name, metrics or None, column=column, version=version, settings=settings_from(home))
    if as_csv:
        print(found.to_csv(index=False), end="")
    else:
        console.print(frame_table(found.tail(last), title=f"{name}: {len(found):,} figures"))


@alerts_app.command("apply")
def apply_cmd(rules: str = typer.Argument(..., help="YAML file of alert rules."), home: str = HOME) -> None:
    """Store the rules of a YAML file (replacing rules of the same name)."""
    from mloop.monitoring.alerts import apply_rules, load_rules

    names = apply_rules(load_rules(rules), settings_from(home))
    console.print(f"{len(names)} rule(s): {', '.join(names)}", highlight=False)


@alerts_app.command("list")
def alerts_list(firing: bool = typer.Option(False, "--firing", help="Only firing alerts."), home: str = HOME) -> None:
    """Each watched series' alert state."""
    from mloop.monitoring.alerts import list_alerts

    console.print(frame_table(list_alerts(firing_only=firing, settings=settings_from(home)), title="alerts"))


@alerts_app.command("history")
def alerts_history(rule: str = typer.Option(None, "--rule", help="Only this rule."), home: str = HOME) -> None:
    """Every firing and resolution so far."""
    from mloop.monitoring.alerts import alert_history_frame

    found = alert_history_frame(rule, settings=settings_from(home))
    console.print(frame_table(found[["window", "rule", "event", "severity", "silenced", "message"]],
                              title="alert history", max_rows=200))


@alerts_app.command("silence")
def alerts_silence(
    rule: str = typer.Argument(..., help="The rule to silence, or '*' for every rule."),
    until: str = typer.Option(..., "--until", help="End of the silence: ISO time with a zone, or a duration (2h)."),
    key: str = typer.Option("", "--key", help="Only the series whose key starts with this (monitor/version/...)."),
    reason: str = typer.Option("", "--reason", help="Why, for the history."),
    home: str = HOME,
) -> None:
    """Record the rule's events without delivering them until a time."""
    import re

    import pandas as pd

    from mloop.monitoring.alerts import silence
    from mloop.monitoring.monitor import parse_duration

    end: object = until
    if re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhd]\s*", until):
        end = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=parse_duration(until, "--until"))
    silence_id = silence(rule, until=end, key=key, reason=reason, settings=settings_from(home))
    console.print(f"silence {silence_id} on {rule} until {end}", highlight=False)
