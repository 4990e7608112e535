"""Triggers: what a rule watches, observed once per tick as candidate events, each with a dedupe key.

A key names the condition, not the observation: a schedule's minute, a drift window's start, the row-count
watermark a data source grew past, a code digest. Inserting the same key twice (two schedulers, a restart) keeps
one row, so each condition fires once.

>>> check_trigger({"kind": "schedule", "cron": "0 3 * * *"}, "nightly")["cron"]
'0 3 * * *'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mloop.automation._options import check_options
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError

__all__ = ["TRIGGER_KINDS", "Candidate", "check_trigger", "observe"]

TRIGGER_KINDS = ("schedule", "new_data", "drift", "metric_drop", "code_change", "manual")
_OPTIONS = {
    "schedule": ({"cron"}, set()),
    "new_data": (set(), {"path", "min_rows", "feature_view"}),
    "drift": ({"monitor"}, {"metric"}),
    "metric_drop": ({"monitor", "metric"}, {"below", "alias"}),
    "code_change": (set(), {"file", "git", "alias"}),
    "manual": (set(), set()),
}
MAX_PARQUET_FILES = 10_000


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
    checked = check_options(raw, required | {"kind"}, optional, where, f"the {kind} trigger",
                            numbers=("min_rows", "below"))
    if kind == "new_data" and ("path" in raw) == ("feature_view" in raw):
        raise InvalidInputError(field=f"{where}.path", value=None,
                                expected="either path (a Parquet file or folder) or feature_view (a view's name)")
    if kind == "code_change" and ("file" in raw) == ("git" in raw):
        raise InvalidInputError(field=f"{where}.file", value=None,
                                expected="either file (a flow's code) or git (a repository folder)")
    if kind == "schedule":
        from mloop.flows.cron import CronSchedule

        try:
            CronSchedule.parse(raw["cron"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}.cron: {exc.message}", field=f"{where}.cron",
                                    value=raw["cron"]) from None
    return checked


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


def count_rows(path: str) -> int:
    """Rows in a Parquet file, or in every Parquet file under a folder (read from the footers only)."""
    import pyarrow.parquet as pq

    root = Path(path)
    files = [root] if root.is_file() else sorted(root.rglob("*.parquet")) if root.is_dir() else []
    if not files:
        raise NotFoundError(f"new_data trigger: no Parquet file at {path!r}.", field="trigger.path")
    if len(files) > MAX_PARQUET_FILES:
        raise InvalidInputError(field="trigger.path", value=path, expected=f"at most {MAX_PARQUET_FILES} files")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _materialized(rule: Any, view: str, last: dict[str, Any], settings: Settings) -> list[Candidate]:
    """The newest ``features.materialized`` event of ``view`` after the last one this rule saw (several between
    two ticks make one retraining, not several)."""
    import json

    from sqlalchemy import select

    from mloop.events._tables import events
    from mloop.store.sql import open_database

    query = (select(events.c.id, events.c.payload).where(events.c.name == "features.materialized",
                                                         events.c.id > int(last.get("features.outbox_id", 0)))
             .order_by(events.c.id.desc()).limit(1000))
    with open_database(settings.db_url).read() as conn:
        for row in conn.execute(query):
            payload = json.loads(row.payload)
            if payload.get("view") == view:
                return [Candidate(f"new_data:{rule.name}:view:{row.id}",
                                  {"features.view": view, "features.rows": payload.get("rows"),
                                   "features.outbox_id": row.id})]
    return []


def _new_data(rule: Any, trig: dict[str, Any], now: datetime, last: dict[str, Any], settings: Settings) -> list:
    if "feature_view" in trig:
        return _materialized(rule, trig["feature_view"], last, settings)
    rows = count_rows(trig["path"])
    watermark = int(last.get("data.rows", 0))
    if rows - watermark < int(trig.get("min_rows", 1)):
        return []
    # keyed by the watermark it grew past: two observers that saw different counts still write one event
    return [Candidate(f"new_data:{rule.name}:{watermark}",
                      {"data.rows": rows, "data.new_rows": rows - watermark, "data.path": trig["path"]})]


def _latest_window(monitor: str, metric: str, settings: Settings, version: str | None = None) -> Any:
    from mloop.monitoring import series

    frame = series(monitor, metric, settings=settings)
    frame = frame[(frame["column"] == "") & (frame["slice"] == "") & (frame["role"] == "primary")]
    if version is not None:
        frame = frame[frame["version"] == str(version)]
    return None if frame.empty else frame.sort_values("start").iloc[-1]


def _drift(rule: Any, trig: dict[str, Any], now: datetime, last: dict[str, Any], settings: Settings) -> list:
    metric = trig.get("metric", "drift_share")
    row = _latest_window(trig["monitor"], metric, settings)
    if row is None:
        return []
    start = row["start"].isoformat()
    return [Candidate(f"drift:{rule.name}:{start}:{row['version']}",
                      {"drift.share" if metric == "drift_share" else f"drift.{metric}": float(row["value"]),
                       "window": start, "version": str(row["version"])})]


def _metric_drop(rule: Any, trig: dict[str, Any], now: datetime, last: dict[str, Any], settings: Settings) -> list:
    from mloop.registry import registry_for

    registry = registry_for(settings)
    version = registry.get_alias(rule.model, trig.get("alias", "champion"))
    metric = trig["metric"]
    row = _latest_window(trig["monitor"], metric, settings, version=str(version.version))
    if row is None or ("below" in trig and not row["value"] < trig["below"]):
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


def file_digest(path: str) -> str:
    """sha256 of a flow's code file."""
    file = Path(path)
    if not file.is_file():
        raise NotFoundError(f"code_change trigger: no file at {path!r}.", field="trigger.file")
    return hashlib.sha256(file.read_bytes()).hexdigest()


def _champion(rule: Any, trig: dict[str, Any], settings: Settings) -> Any:
    from mloop.registry import registry_for

    try:
        return registry_for(settings).get_alias(rule.model, trig.get("alias", "champion"))
    except NotFoundError:
        return None


def _code_change(rule: Any, trig: dict[str, Any], now: datetime, last: dict[str, Any], settings: Settings) -> list:
    if "git" in trig:
        return _git_change(rule, trig, last, settings)
    digest = file_digest(trig["file"])
    champion = _champion(rule, trig, settings)
    # the champion's own record wins: it says what code trained the model now serving
    before = (champion.tags.get("code_digest") if champion else None) or last.get("code.digest")
    if digest == before:
        return []
    return [Candidate(f"code_change:{rule.name}:{digest}", {"code.digest": digest, "code.before": before})]


def _git_change(rule: Any, trig: dict[str, Any], last: dict[str, Any], settings: Settings) -> list:
    """The repository's HEAD against the commit the champion's training run recorded (``mloop.git.commit``)."""
    from mloop.registry import registry_for
    from mloop.tracking.env import git_state

    state = git_state.__wrapped__(str(trig["git"]))  # uncached: a long-running runtime must see new commits
    if state is None:
        raise NotFoundError(f"code_change trigger: {trig['git']!r} is not a git repository.", field="trigger.git")
    champion = _champion(rule, trig, settings)
    trained = None
    if champion is not None and champion.run_id:
        trained = registry_for(settings).runs.get_run(champion.run_id).tags.get("mloop.git.commit")
    before = trained or last.get("code.commit")
    if state[0] == before:
        return []
    return [Candidate(f"code_change:{rule.name}:{state[0]}", {"code.commit": state[0], "code.dirty": state[1],
                                                               "code.before": before})]


_OBSERVERS = {"schedule": _schedule, "new_data": _new_data, "drift": _drift, "metric_drop": _metric_drop,
              "code_change": _code_change}
