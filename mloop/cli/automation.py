"""``mloop automation``: apply, list, pause, resume, dry-run, tick, run, fire, firings, timeline."""

from __future__ import annotations

import json
import time

import typer

from mloop.cli._app import app, console
from mloop.cli._render import settings_from
from mloop.errors import InvalidInputError

automation_app = typer.Typer(help="Continuous training: rules with triggers, conditions and actions.",
                             no_args_is_help=True)
app.add_typer(automation_app, name="automation")

HOME = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop).")
JSON = typer.Option(False, "--json", help="Print JSON.")


def _print(data: object, as_json: bool, lines: list[str]) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    for line in lines:
        console.print(line, highlight=False, markup=False)


@automation_app.command("apply")
def apply(file: str = typer.Argument(..., help="A YAML file of rules."), home: str = HOME) -> None:
    """Store the rules of FILE; a changed rule gets a new version."""
    from mloop.automation import apply_rules

    for r in apply_rules(file, settings=settings_from(home)):
        console.print(f"{r['name']}: version {r['version']}" + ("" if r["changed"] else " (unchanged)"),
                      highlight=False, markup=False)


@automation_app.command("list")
def list_(as_json: bool = JSON, home: str = HOME) -> None:
    """Every rule with its version, state, trigger and actions."""
    from mloop.automation import list_rules

    rules = list_rules(settings_from(home))
    _print(rules, as_json, [f"{r['name']} v{r['version']} {'paused' if r['paused'] else 'active'} "
                            f"model={r['model']} on {r['trigger']} when {r['when'] or '(always)'} -> "
                            f"{', '.join(r['actions'])}" for r in rules] or ["no rules"])


@automation_app.command("pause")
def pause(name: str, home: str = HOME) -> None:
    """Pause a rule: its trigger is not observed and it does not fire."""
    from mloop.automation import set_paused

    set_paused(name, True, settings_from(home))
    console.print(f"{name}: paused", highlight=False, markup=False)


@automation_app.command("resume")
def resume(name: str, home: str = HOME) -> None:
    """Resume a paused rule."""
    from mloop.automation import set_paused

    set_paused(name, False, settings_from(home))
    console.print(f"{name}: active", highlight=False, markup=False)


@automation_app.command("dry-run")
def dry_run(as_json: bool = JSON, home: str = HOME) -> None:
    """Show what would fire now and why; changes nothing."""
    from mloop.automation import dry_run as preview

    shown = preview(settings=settings_from(home))
    _print(shown, as_json, [s.get("error") or (f"{s['rule']}: {'WOULD FIRE' if s['would_fire'] else 'would not fire'}"
                                               f"{' (already recorded)' if s['already_recorded'] else ''}: "
                                               f"{s['reason']} -> {', '.join(s['actions'])}")
                            for s in shown] or ["no trigger sees anything now"])


@automation_app.command("tick")
def tick(as_json: bool = JSON, home: str = HOME) -> None:
    """One pass: observe triggers, record events, fire rules, run pending firings."""
    from dataclasses import asdict

    from mloop.automation import tick as one_pass
    from mloop.automation.loop import report_lines

    report = one_pass(settings=settings_from(home))
    _print(asdict(report), as_json, report_lines(report) or ["nothing new"])


@automation_app.command("run")
def run(interval: float = typer.Option(60.0, "--interval", help="Seconds between passes."),
        home: str = HOME) -> None:
    """Tick forever (every --interval seconds); safe to run on several machines at once."""
    from mloop.automation.loop import tick_and_report

    if not 1 <= interval <= 86_400:
        raise InvalidInputError(field="--interval", value=interval, expected="1 to 86400 seconds")
    settings = settings_from(home)
    while True:
        tick_and_report(lambda line: console.print(line, highlight=False, markup=False), settings)
        time.sleep(interval)


@automation_app.command("fire")
def fire(rule: str, payload: str = typer.Option("{}", "--payload", help="The event's fields as JSON."),
         request_id: str = typer.Option(None, "--request-id", help="Fire once however often this is retried."),
         as_json: bool = JSON, home: str = HOME) -> None:
    """Fire RULE by hand (a manual trigger) and run it."""
    from mloop.automation import fire_manual

    try:
        data = json.loads(payload)
    except ValueError:
        raise InvalidInputError(field="--payload", value=payload, expected="a JSON object") from None
    result = fire_manual(rule, data, request_id=request_id, settings=settings_from(home))
    lines = [f"{rule}: " + ("already fired for this request" if not result["recorded"] else
                            f"firing {result['firing'][:8]}" if result["firing"] else f"did not fire: "
                            f"{result['reason']}")]
    _print(result, as_json, lines + [f"  {r['state']} {r['reason']}" for r in result.get("ran", [])])


@automation_app.command("firings")
def firings_(rule: str = typer.Option(None, "--rule"), model: str = typer.Option(None, "--model", "-m"),
             firing: str = typer.Option(None, "--firing", help="One firing's id (a version's automation.firing)."),
             limit: int = typer.Option(20, "--limit"), as_json: bool = JSON, home: str = HOME) -> None:
    """Recent firings with each action's status."""
    from mloop.automation import firings

    found = firings(rule=rule, model=model, firing=firing, limit=limit, settings=settings_from(home))
    _print(found, as_json, [f"{f['id'][:8]} {f['rule']} v{f['rule_version']} {f['state']}: {f['reason']} | " +
                            ", ".join(f"{a['kind']}={a['status']}" for a in f["actions"]) for f in found]
           or ["no firings"])


@automation_app.command("timeline")
def timeline_(model: str, as_json: bool = JSON, home: str = HOME) -> None:
    """What automation did for MODEL, oldest first."""
    from mloop._util.clock import from_ms
    from mloop.automation import timeline

    lines = timeline(model, settings=settings_from(home))
    _print(lines, as_json, [f"{from_ms(x['time']):%Y-%m-%d %H:%M:%S} {x['what']}: {x['detail']}" for x in lines]
           or ["nothing yet"])
