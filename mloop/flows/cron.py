"""Five-field cron expressions (minute hour day-of-month month day-of-week), parsed without dependencies.

Supports ``*``, lists ``1,15``, ranges ``1-5``, steps ``*/5`` and ``10-40/10``, month and weekday names,
and the shortcuts ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``.

>>> from datetime import datetime, UTC
>>> s = CronSchedule.parse("*/15 9-17 * * mon-fri")
>>> s.matches(datetime(2026, 11, 30, 9, 45, tzinfo=UTC))   # a Monday
True
>>> s.next_after(datetime(2026, 11, 28, 12, 0, tzinfo=UTC)).isoformat()   # a Saturday
'2026-11-30T09:00:00+00:00'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mloop.errors import InvalidInputError

_SHORTCUTS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
              "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
_NAMES = {
    3: {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                    "dec"], 1)},
    4: {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}
_BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_FIELDS = ["minute", "hour", "day of month", "month", "day of week"]


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression; ``matches(dt)`` and ``next_after(dt)`` work in UTC."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        if not isinstance(expression, str):
            raise InvalidInputError(field="cron", value=expression, expected="a cron string like '*/5 * * * *'")
        text = _SHORTCUTS.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) != 5:
            raise InvalidInputError(field="cron", value=expression,
                                    expected="five fields 'minute hour day-of-month month day-of-week', e.g. "
                                    "'*/5 * * * *'")
        sets = [_field(p, i, expression) for i, p in enumerate(parts)]
        weekdays = frozenset(0 if d == 7 else d for d in sets[4])
        return cls(expression, sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] == "*", parts[4] == "*")

    def matches(self, when: datetime) -> bool:
        when = _utc(when)
        if when.minute not in self.minutes or when.hour not in self.hours or when.month not in self.months:
            return False
        return self._day_ok(when)

    def next_after(self, when: datetime) -> datetime:
        """The first matching minute strictly after ``when`` (searched up to five years ahead)."""
        current = _utc(when).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = current + timedelta(days=366 * 5)
        while current < limit:
            if current.month not in self.months:
                current = (current.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_ok(current):
                current = current.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if current.hour not in self.hours:
                current = current.replace(minute=0) + timedelta(hours=1)
                continue
            if current.minute in self.minutes:
                return current
            current += timedelta(minutes=1)
        raise InvalidInputError(field="cron", value=self.expression, expected="an expression that ever matches")

    def _day_ok(self, when: datetime) -> bool:
        # cron's rule: when both day fields are restricted, either may match
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def __str__(self) -> str:
        return self.expression


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise InvalidInputError(field="time", value=when, expected="a timezone-aware datetime (UTC)")
    return when.astimezone(UTC)


def _field(text: str, index: int, expression: str) -> frozenset[int]:
    low, high = _BOUNDS[index]
    values: set[int] = set()
    for part in text.lower().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = _number(step_text, index, expression)
            if step < 1:
                raise InvalidInputError(field=f"cron {_FIELDS[index]}", value=expression, expected="a step >= 1")
        if part in ("*", ""):
            start, stop = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, stop = _number(a, index, expression), _number(b, index, expression)
        else:
            start = _number(part, index, expression)
            stop = high if step > 1 else start
        if not (low <= start <= high and low <= stop <= high and start <= stop):
            raise InvalidInputError(field=f"cron {_FIELDS[index]}", value=expression,
                                    expected=f"values between {low} and {high}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


def _number(text: str, index: int, expression: str) -> int:
    names = _NAMES.get(index, {})
    if text in names:
        return names[text]
    try:
        return int(text)
    except ValueError:
        raise InvalidInputError(field=f"cron {_FIELDS[index]}", value=expression,
                                expected="numbers" + (f" or names like {next(iter(names))}" if names else "")) from None
