"""Alert rules over a monitor's series: a metric, a threshold, a number of consecutive windows, a severity.

A rule watches every series it matches (``column: "*"`` is any input; ``version``/``role`` default to all), each
with its own state: ``ok`` → ``pending`` while breaching for fewer than ``windows`` windows → ``firing`` (one
event) → ``ok`` again after ``resolve_windows`` windows within the threshold (one ``resolved`` event). States live
in the metadata store and each window is evaluated once, so re-running the evaluation never repeats an event; the
state change and its event are written in one transaction. A silence (rule, key prefix, end time) records the
events it covers without delivering them.

Rules come from YAML (``load_rules``) or Python (``AlertRule(...)``)::

    rules:
      - name: km-drift
        monitor: eta-5m
        metric: drift_effect      # any metric of the series, e.g. latency_p99, accuracy, violation_share
        column: "*"               # any input ("(prediction)" for the output); "" for the window as a whole
        above: 0.3                # or below: 0.7
        windows: 3                # consecutive windows before it fires
        severity: critical        # info, warning (default) or critical
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import and_, delete, insert, select, update

from mloop._util.clock import now_ms
from mloop._util.names import check_name
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.monitoring._tables import alert_history, alert_rules, alert_states, monitor_series, silences
from mloop.monitoring.monitor import _start_ms, get_monitor
from mloop.monitoring.windows import PREDICTION
from mloop.store.sql import open_database

__all__ = ["AlertEvent", "AlertRule", "apply_rules", "alert_history_frame", "evaluate_alerts", "list_alerts",
           "load_rules", "silence"]

SEVERITIES = ("info", "warning", "critical")
ANY = "*"
_FIELDS = ("name", "monitor", "metric", "above", "below", "column", "slice", "version", "role", "windows",
           "resolve_windows", "severity", "description")


@dataclass(frozen=True)
class AlertRule:
    """Fire when ``metric`` is above ``above`` (or below ``below``) for ``windows`` consecutive windows."""

    name: str
    monitor: str
    metric: str
    above: float | None = None
    below: float | None = None
    column: str = ""
    slice: str = ""
    version: str = ANY
    role: str = ANY
    windows: int = 1
    resolve_windows: int = 1
    severity: str = "warning"
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "name")
        check_name(self.monitor, "monitor")
        if not isinstance(self.metric, str) or not self.metric:
            raise InvalidInputError(field=f"{self.name}.metric", value=self.metric, expected="a metric name")
        if (self.above is None) == (self.below is None):
            raise InvalidInputError(field=f"{self.name}.above", value=[self.above, self.below],
                                    expected="exactly one of 'above' or 'below'")
        for key in ("above", "below"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or value != value):
                raise InvalidInputError(field=f"{self.name}.{key}", value=value, expected="a number")
        for key in ("windows", "resolve_windows"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
                raise InvalidInputError(field=f"{self.name}.{key}", value=value,
                                        expected="a whole number of windows from 1 to 10000")
        if self.severity not in SEVERITIES:
            raise InvalidInputError(field=f"{self.name}.severity", value=self.severity,
                                    expected=f"one of {list(SEVERITIES)}")
        for key in ("column", "slice", "version", "role", "description"):
            if not isinstance(getattr(self, key), str):
                raise InvalidInputError(field=f"{self.name}.{key}", value=getattr(self, key), expected="text")

    def breaches(self, value: float) -> bool:
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]

    def describe(self, value: float, key: str) -> str:
        sign, limit = (">", self.above) if self.above is not None else ("<", self.below)
        where = key.split("/", 1)[1]
        return f"{self.metric} {sign} {limit:g} for {self.windows} window(s) on {where}: {value:.4g}"

    @classmethod
    def from_dict(cls, data: Any, where: str = "rule") -> AlertRule:
        if not isinstance(data, dict):
            raise InvalidInputError(field=where, value=data, expected="a mapping with name, monitor, metric...")
        unknown = sorted(set(data) - set(_FIELDS) - {"for"})
        if unknown:
            raise InvalidInputError(field=f"{where}.{unknown[0]}", value=unknown, expected=f"keys of {list(_FIELDS)}")
        values = dict(data)
        if "for" in values:  # the spelling of Prometheus' alert rules
            values["windows"] = values.pop("for")
        for key in ("column", "slice", "version", "role"):
            if key in values and isinstance(values[key], int | float) and not isinstance(values[key], bool):
                values[key] = str(values[key])
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidInputError(field=where, value=data, expected=f"name, monitor and metric ({exc})") from None


@dataclass(frozen=True)
class AlertEvent:
    """One state change of one watched series: ``firing`` or ``resolved``."""

    id: str
    rule: str
    key: str
    event: str
    window: int
    value: float | None
    severity: str
    message: str
    silenced: bool
    time: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_rules(source: str | Path | list[dict[str, Any]] | dict[str, Any]) -> list[AlertRule]:
    """Rules from a YAML file (a ``rules:`` list, or a list), or from the parsed data itself."""
    data: Any = source
    if isinstance(source, str | Path):
        import yaml

        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(field="rules", value=str(path), expected="a YAML file of alert rules")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise InvalidInputError(field="rules", value=str(path), expected=f"valid YAML ({exc})") from None
    if isinstance(data, dict):
        data = data.get("rules")
    if not isinstance(data, list):
        raise InvalidInputError(field="rules", value=type(data).__name__, expected="a list of rules under 'rules:'")
    rules = [AlertRule.from_dict(item, f"rules[{i}]") for i, item in enumerate(data)]
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise InvalidInputError(field="rules", value=sorted({n for n in names if names.count(n) > 1}),
                                expected="each rule name once")
    return rules


def apply_rules(rules: list[AlertRule], settings: Settings | None = None) -> list[str]:
    """Store ``rules`` (replacing rules of the same name); their monitors must exist. Returns the names."""
    settings = settings or Settings.load()
    for rule in rules:
        get_monitor(rule.monitor, settings)
    with open_database(settings.db_url).write() as conn:
        for rule in rules:
            spec = json.dumps(asdict(rule))
            found = conn.execute(select(alert_rules.c.spec).where(alert_rules.c.name == rule.name)).first()
            if found is None:
                conn.execute(insert(alert_rules).values(name=rule.name, monitor=rule.monitor, spec=spec,
                                                        updated=now_ms()))
            elif found.spec != spec:  # a changed rule starts over: its old states judged other thresholds
                conn.execute(update(alert_rules).where(alert_rules.c.name == rule.name).values(
                    monitor=rule.monitor, spec=spec, updated=now_ms()))
                conn.execute(delete(alert_states).where(alert_states.c.rule == rule.name))
    return [r.name for r in rules]


def rules_of(settings: Settings, monitor: str | None = None) -> list[AlertRule]:
    query = select(alert_rules.c.spec).order_by(alert_rules.c.name)
    if monitor is not None:
        query = query.where(alert_rules.c.monitor == monitor)
    with open_database(settings.db_url).read() as conn:
        return [AlertRule(**json.loads(row.spec)) for row in conn.execute(query)]


def silence(rule: str, *, until: Any, key: str = "", reason: str = "", settings: Settings | None = None) -> str:
    """Hold back the events of ``rule`` (``"*"``: every rule) on keys starting with ``key`` until ``until``."""
    settings = settings or Settings.load()
    end = _start_ms(until, "until")
    if end <= now_ms():
        raise InvalidInputError(field="until", value=str(until), expected="a time in the future")
    if rule != ANY:
        check_name(rule, "rule")
    silence_id = uuid.uuid4().hex
    with open_database(settings.db_url).write() as conn:
        conn.execute(insert(silences).values(id=silence_id, rule=rule, key=key[:512], until=end,
                                             reason=reason[:2000], created=now_ms()))
    return silence_id


def evaluate_alerts(monitor: str | None = None, *, settings: Settings | None = None,
                    now: int | None = None) -> list[AlertEvent]:
    """Judge every window not judged yet against every rule (of ``monitor``); returns the new events."""
    settings = settings or Settings.load()
    db = open_database(settings.db_url)
    events: list[AlertEvent] = []
    outbox: list[dict[str, Any]] = []
    for rule in rules_of(settings, monitor):
        judge = _Judge(rule, db, now or now_ms(), get_monitor(rule.monitor, settings).model)
        events.extend(judge.run())
        outbox.extend(judge.published)
    if outbox:  # this process tries to deliver them at once; a worker delivers what it does not
        from mloop.registry import registry_for

        registry_for(settings).webhooks.dispatch(outbox)
    return events


def list_alerts(*, firing_only: bool = False, settings: Settings | None = None) -> pd.DataFrame:
    """Every watched series' state: rule, key, state, since, value, severity."""
    settings = settings or Settings.load()
    query = select(alert_states).order_by(alert_states.c.rule, alert_states.c.key)
    if firing_only:
        query = query.where(alert_states.c.state == "firing")
    with open_database(settings.db_url).read() as conn:
        rows = conn.execute(query).all()
    severity = {r.name: r.severity for r in rules_of(settings)}
    return pd.DataFrame([{"rule": r.rule, "key": r.key, "state": r.state, "since": pd.Timestamp(r.since, unit="ms",
                          tz="UTC"), "value": r.value, "severity": severity.get(r.rule, "")} for r in rows],
                        columns=["rule", "key", "state", "since", "value", "severity"])


def alert_history_frame(rule: str | None = None, *, settings: Settings | None = None) -> pd.DataFrame:
    """Every event so far, oldest first."""
    settings = settings or Settings.load()
    query = select(alert_history).order_by(alert_history.c.time, alert_history.c.window, alert_history.c.id)
    if rule is not None:
        query = query.where(alert_history.c.rule == rule)
    with open_database(settings.db_url).read() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame([dict(r._mapping) for r in rows],
                         columns=[c.name for c in alert_history.columns])
    frame["window"] = pd.to_datetime(frame["window"].astype("int64"), unit="ms", utc=True)
    return frame


class _Judge:
    """One rule's pass over the windows it has not judged yet."""

    def __init__(self, rule: AlertRule, db: Any, now: int, model: str) -> None:
        self.rule, self.db, self.now, self.model = rule, db, now, model
        self.published: list[dict[str, Any]] = []

    def run(self) -> list[AlertEvent]:
        with self.db.read() as conn:
            states = {r.key: r for r in conn.execute(select(alert_states).where(alert_states.c.rule == self.rule.name))}
            points = conn.execute(self._query(min((s.last_window for s in states.values()), default=-1)
                                              if len(states) else -1)).all()
            quiet = conn.execute(select(silences).where(silences.c.until > self.now)).all()
        events: list[AlertEvent] = []
        unsaved: dict[str, _State] = {}
        for point in points:
            key = "/".join([self.rule.monitor, point.version, point.role, point.column, point.slice])
            state = states.get(key)
            if state is not None and point.start <= state.last_window:
                continue
            event, states[key] = self._step(key, state, point)
            if event is not None:
                events.append(self._record(event, states[key], quiet))
                unsaved.pop(key, None)
            else:
                unsaved[key] = states[key]
        if unsaved:
            # Quiet windows are saved together: after a crash they are judged again, to the same states.
            with self.db.write() as conn:
                for state in unsaved.values():
                    self._write_state(conn, state)
        return events

    def _query(self, after: int) -> Any:
        t, r = monitor_series.c, self.rule
        where = [t.monitor == r.monitor, t.metric == r.metric, t.start > after, t.value.is_not(None)]
        for col, wanted in ((t.column, r.column), (t.slice, r.slice), (t.version, r.version), (t.role, r.role)):
            if wanted != ANY:
                where.append(col == wanted)
        if r.column == ANY:  # any input: the prediction is watched by naming it, column "(prediction)"
            where.append(t.column != PREDICTION)
        return select(t.start, t.version, t.role, t.column, t.slice, t.value).where(and_(*where)).order_by(t.start)

    def _step(self, key: str, state: Any, point: Any) -> tuple[AlertEvent | None, Any]:
        current = _State(key, "ok", 0, -1, point.start, None) if state is None else _State.of(state)
        breach = self.rule.breaches(point.value)
        current.last_window, current.value = point.start, point.value
        if current.state == "firing":
            current.streak = 0 if breach else current.streak + 1
            if current.streak >= self.rule.resolve_windows:
                current.state, current.streak, current.since = "ok", 0, point.start
                return self._event(key, "resolved", point), current
            return None, current
        if not breach:
            current.state, current.streak = "ok", 0
            return None, current
        current.streak += 1
        if current.streak == 1:
            current.since = point.start
        if current.streak >= self.rule.windows:
            current.state, current.streak = "firing", 0
            return self._event(key, "firing", point), current
        current.state = "pending"
        return None, current

    def _event(self, key: str, kind: str, point: Any) -> AlertEvent:
        message = (self.rule.describe(point.value, key) if kind == "firing"
                   else f"{self.rule.metric} back within its limit on {key.split('/', 1)[1]}: {point.value:.4g}")
        return AlertEvent(uuid.uuid4().hex, self.rule.name, key, kind, point.start, point.value, self.rule.severity,
                          f"[{self.rule.severity}] {self.rule.name}: {message}", False, now_ms())

    def _record(self, event: AlertEvent, state: _State, quiet: list[Any]) -> AlertEvent:
        silenced = any(s.rule in (ANY, event.rule) and event.key.startswith(s.key) for s in quiet)
        event = AlertEvent(**{**asdict(event), "silenced": silenced})
        with self.db.write() as conn:  # the state and its event together: a crash leaves both or neither
            self._write_state(conn, state)
            conn.execute(insert(alert_history).values(**{**asdict(event), "silenced": int(silenced)}))
            if not silenced:
                self.published.append(publish(conn, event, self.model))
        return event

    def _write_state(self, conn: Any, state: _State) -> None:
        values = {"state": state.state, "streak": state.streak, "last_window": state.last_window,
                  "since": state.since, "value": state.value}
        where = and_(alert_states.c.rule == self.rule.name, alert_states.c.key == state.key)
        if conn.execute(update(alert_states).where(where).values(**values)).rowcount == 0:
            conn.execute(insert(alert_states).values(rule=self.rule.name, key=state.key, **values))


@dataclass
class _State:
    key: str
    state: str
    streak: int
    last_window: int
    since: int
    value: float | None

    @classmethod
    def of(cls, row: Any) -> _State:
        return cls(row.key, row.state, row.streak, row.last_window, row.since, row.value)


def publish(conn: Any, event: AlertEvent, model: str) -> dict[str, Any]:
    """Put an alert event in the events outbox, in the caller's transaction: webhooks subscribed to
    ``alert.firing``/``alert.resolved`` (for every model, or for ``model``) get it even if this process ends."""
    from mloop.events.outbox import append_event

    payload = {"event": f"alert.{event.event}", "rule": event.rule, "key": event.key, "model": model,
               "window": event.window, "value": event.value, "severity": event.severity, "message": event.message,
               "alert_id": event.id, "time": event.time}
    return append_event(conn, "monitoring", f"alert.{event.event}", model, payload)


def check_rule_exists(name: str, settings: Settings) -> None:
    if not any(r.name == name for r in rules_of(settings)):
        raise NotFoundError(f"No alert rule named {name!r}.", field="rule")
