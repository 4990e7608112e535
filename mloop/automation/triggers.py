"""Triggers: what a rule watches, observed once per tick as candidate events, each with a dedupe key.

A key names the condition, not the observation: a schedule's minute, a drift window's start, the row-count
watermark a data source grew past, a code digest. Inserting the same key twice (two schedulers, a restart) keeps
one row, so each condition fires once.

This module checks every trigger's options and observes the schedule and the monitor-fed ones; the triggers
that read data (files, tables, feature views, drift of a file) are in ``trigger_data``, those that read what
tracking recorded about training (a tracked metric, the code that trained the champion) in ``trigger_runs``.

>>> check_trigger({"kind": "schedule", "cron": "0 3 * * *"}, "nightly")["cron"]
'0 3 * * *'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mloop.automation._options import check_options
from mloop.config import Settings
from mloop.errors import InvalidInputError

__all__ = ["TRIGGER_KINDS", "Candidate", "check_trigger", "observe"]

TRIGGER_KINDS = ("schedule", "new_data", "drift", "metric_drop", "code_change", "manual")
_OPTIONS = {
    "schedule": ({"cron"}, set()),
    "new_data": (set(), {"path", "min_rows", "feature_view", "project", "table", "db_url"}),
    "drift": (set(), {"monitor", "metric", "data", "share", "alias"}),
    "metric_drop": (set(), {"monitor", "metric", "run_metric", "experiment", "below", "above", "alias"}),
    "code_change": (set(), {"file", "git", "alias"}),
    "manual": (set(), set()),
}
# What a trigger watches: exactly one of these sources, each with the options that only make sense with it and
# the ones it cannot do without.
_SOURCES: dict[str, dict[str, tuple[str, set[str], set[str]]]] = {
    "new_data": {"path": ("a Parquet file or folder", {"min_rows"}, set()),
                 "feature_view": ("a feature view's name (with its project)", {"project"}, set()),
                 "table": ("a table's name (with db_url)", {"min_rows", "db_url"}, {"db_url"})},
    "drift": {"monitor": ("a monitor's name", {"metric"}, set()),
              "data": ("a Parquet file or folder, against the champion's training profile", {"share", "alias"},
                       set())},
    "metric_drop": {"monitor": ("a monitor's name (with metric)", {"metric"}, {"metric"}),
                    "run_metric": ("a tracked metric of the latest finished run", {"experiment"}, set())},
    "code_change": {"file": ("a flow's code", set(), set()), "git": ("a repository folder", set(), set())},
}
NUMBERS = ("min_rows", "below", "above", "share")

@dataclass(frozen=True)
class Candidate:
    """A condition a trigger saw: its dedupe key and the payload the rule's ``when`` reads."""

    key: str
    payload: dict[str, Any]


def check_trigger(raw: Any, rule: str) -> dict[str, Any]:
    """The trigger mapping of ``rule``, validated (kind, required and known options)."""
    where = f"{rule}.trigger"
    if not isinstance(raw, dict) or raw.get("kind") not in TRIGGER_KINDS:
        raise InvalidInputError(field=f"{where}.kind", value=raw.get("kind") if isinstance(raw, dict) else raw,
                                expected=f"one of {list(TRIGGER_KINDS)}")
    kind = raw["kind"]
    required, optional = _OPTIONS[kind]
    checked = check_options(raw, required | {"kind"}, optional, where, f"the {kind} trigger", numbers=NUMBERS)
    if kind in _SOURCES:
        _check_source(raw, _SOURCES[kind], where)
    _check_values(raw, where)
    if kind == "schedule":
        from mloop.flows.cron import CronSchedule

        try:
            CronSchedule.parse(raw["cron"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}.cron: {exc.message}", field=f"{where}.cron",
                                    value=raw["cron"]) from None
    return checked


def _check_source(raw: dict[str, Any], sources: dict[str, tuple[str, set[str], set[str]]], where: str) -> None:
    """Exactly one source; options that belong to another source are refused; a source's needs are present."""
    named = [name for name in sources if name in raw]
    if len(named) != 1:
        choices = ", ".join(f"{name} ({what})" for name, (what, _, _) in sources.items())
        wrong = named[1] if named else next(iter(sources))
        raise InvalidInputError(field=f"{where}.{wrong}", value=raw.get(wrong), expected=f"exactly one of {choices}")
    source = named[0]
    _, allowed, needed = sources[source]
    others = {opt for _, (_, opts, _) in sources.items() for opt in opts} - allowed
    stray = sorted(others & set(raw))
    if stray:
        raise InvalidInputError(field=f"{where}.{stray[0]}", value=raw[stray[0]],
                                expected=f"no {stray[0]} with {source} (options of {source}: {sorted(allowed)})")
    missing = sorted(needed - set(raw))
    if missing:
        raise InvalidInputError(field=f"{where}.{missing[0]}", value=None, expected=f"{missing[0]} with {source}")


def _check_values(raw: dict[str, Any], where: str) -> None:
    """The values a source option must have: a table identifier, a database URL, names, a share in [0, 1]."""
    from mloop.automation.trigger_data import check_db_url, check_table_name

    if "table" in raw:
        check_table_name(raw["table"], f"{where}.table")
    if "db_url" in raw:
        check_db_url(raw["db_url"], f"{where}.db_url")
    for option in ("data", "path", "file", "git", "run_metric", "experiment", "project", "feature_view"):
        if option in raw and (not isinstance(raw[option], str) or not raw[option].strip()):
            raise InvalidInputError(field=f"{where}.{option}", value=raw[option], expected="a non-empty string")
    if "share" in raw and not 0 <= raw["share"] <= 1:
        raise InvalidInputError(field=f"{where}.share", value=raw["share"], expected="a share of columns from 0 to 1")
    if "min_rows" in raw and raw["min_rows"] < 1:
        raise InvalidInputError(field=f"{where}.min_rows", value=raw["min_rows"], expected="at least 1")


def observe(rule: Any, now: datetime, last: dict[str, Any] | None, settings: Settings) -> list[Candidate]:
    """What ``rule``'s trigger sees at ``now``; ``last`` is the payload of its previous event (or None)."""
    kind = rule.trigger["kind"]
    if kind == "manual":
        return []
    return _OBSERVERS[kind](rule, rule.trigger, now, last or {}, settings)


def _schedule(rule: Any, trig: dict[str, Any], now: datetime, last: dict[str, Any], settings: Settings) -> list:
    from mloop.flows.cron import CronSchedule

    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    if not CronSchedule.parse(trig["cron"]).matches(minute):
        return []
    return [Candidate(f"schedule:{rule.name}:{minute.isoformat()}", {"schedule.due": minute.isoformat()})]


def _new_data(rule: Any, trig: dict[str, Any], now: datetime, last: dict[str, Any], settings: Settings) -> list:
    from mloop.automation.trigger_data import new_data

    return new_data(rule, trig, last, settings)


def _latest_window(monitor: str, metric: str, settings: Settings, version: str | None = None) -> Any:
    from mloop.monitoring import series

    frame = series(monitor, metric, settings=settings)
    frame = frame[(frame["column"] == "") & (frame["slice"] == "") & (frame["role"] == "primary")]
    if version is not None:
        frame = frame[frame["version"] == str(version)]
    return None if frame.empty else frame.sort_values("start").iloc[-1]


def _drift(rule: Any, trig: dict[str, Any], now: datetime, last: dict[str, Any], settings: Settings) -> list:
    if "data" in trig:
        from mloop.automation.trigger_data import data_drift

        return data_drift(rule, trig, settings)
    metric = trig.get("metric", "drift_share")
    row = _latest_window(trig["monitor"], metric, settings)
    if row is None:
        return []
    start = row["start"].isoformat()
    return [Candidate(f"drift:{rule.name}:{start}:{row['version']}",
                      {"drift.share" if metric == "drift_share" else f"drift.{metric}": float(row["value"]),
                       "window": start, "version": str(row["version"])})]


def beyond_bounds(trig: dict[str, Any], value: float) -> bool:
    """True when ``value`` is past the trigger's bounds: under ``below`` or over ``above`` (either one suffices;
    with neither, every value counts and ``when`` decides)."""
    if "below" not in trig and "above" not in trig:
        return True
    return ("below" in trig and value < trig["below"]) or ("above" in trig and value > trig["above"])


def _metric_drop(rule: Any, trig: dict[str, Any], now: datetime, last: dict[str, Any], settings: Settings) -> list:
    if "run_metric" in trig:
        from mloop.automation.trigger_runs import run_metric_drop

        return run_metric_drop(rule, trig, settings)
    from mloop.registry import registry_for

    registry = registry_for(settings)
    version = registry.get_alias(rule.model, trig.get("alias", "champion"))
    metric = trig["metric"]
    row = _latest_window(trig["monitor"], metric, settings, version=str(version.version))
    if row is None or not beyond_bounds(trig, float(row["value"])):
        return []
    start = row["start"].isoformat()
    payload = {f"live.{metric}": float(row["value"]), "window": start, "version": version.version}
    if metric in version.metrics:
        payload[f"train.{metric}"] = float(version.metrics[metric])
    previous = _promoted_from(rule.model, trig.get("alias", "champion"), version.version, settings)
    if previous is not None:  # the champion automation replaced: its last live figure, for a rollback rule
        before = _latest_window(trig["monitor"], metric, settings, version=str(previous))
        if before is not None:
            payload[f"previous.{metric}"] = float(before["value"])
            payload["previous.version"] = previous
    return [Candidate(f"metric_drop:{rule.name}:{start}:{version.version}", payload)]


def _promoted_from(model: str, alias: str, version: int, settings: Settings) -> int | None:
    """The version automation's last promotion of ``alias`` replaced, when it promoted ``version``."""
    from mloop.automation.moves import last_promotion
    from mloop.store.sql import open_database

    with open_database(settings.db_url).read() as conn:
        last = last_promotion(conn, model, alias)
    return int(last["from"]) if last is not None and last["to"] == version else None


def _code_change(rule: Any, trig: dict[str, Any], now: datetime, last: dict[str, Any], settings: Settings) -> list:
    from mloop.automation.trigger_runs import code_change

    return code_change(rule, trig, last, settings)


_OBSERVERS = {"schedule": _schedule, "new_data": _new_data, "drift": _drift, "metric_drop": _metric_drop,
              "code_change": _code_change}
