"""Online retrieval: a serving plan compiled once per feature list (or service), then reused per request.

The plan holds, per feature view, the store's reader (a prepared statement or one Redis script call),
the join keys and the TTL; a request only encodes keys, reads, and checks event times. The online
store keeps the latest row of each entity only, so each value gets a status:

- ``"present"``: the value (its event time within the TTL of now, or of ``as_of``);
- ``"not_found"``: nothing stored for the entity (None);
- ``"expired"``: older than the TTL (None; its event time is still reported);
- ``"after_as_of"``: reading ``as_of`` a past moment, the stored value is newer than that moment, and
  the value it replaced is gone: None, and no event time, since returning either would leak the future.

Work per request is a handful of C-level passes over whole columns (``zip``, ``min``, ``max``); the
per-entity Python loop runs only when some entity is missing, expired or after ``as_of``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mloop.errors import InvalidInputError
from mloop.features.online.base import BatchReader, Row
from mloop.features.plan import Request

__all__ = ["OnlineResult", "ServingPlan", "instant_us"]

PRESENT, NOT_FOUND, EXPIRED, AFTER_AS_OF = "present", "not_found", "expired", "after_as_of"
SEP = "\x1f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def instant_us(when: Any, field: str = "as_of") -> int:
    """Epoch microseconds of a timezone-aware datetime, exactly (no float rounding).

    >>> from zoneinfo import ZoneInfo
    >>> instant_us(datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")))  # second 02:30
    1792891800000000
    """
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise InvalidInputError(field=field, value=str(when)[:60],
                                expected="a timezone-aware datetime, e.g. datetime(2026, 1, 1, tzinfo=UTC)")
    return (when - _EPOCH) // _US


def _datetime(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


class OnlineResult:
    """Feature values for a list of entities, column-oriented.

    - ``values``: output name -> list of values (None when missing)
    - ``status``: feature view -> list of ``"present" | "not_found" | "expired" | "after_as_of"``
    - ``event_times``: feature view -> list of aware UTC datetimes (None when not found or after ``as_of``)
    """

    __slots__ = ("entities", "values", "status", "_event_us", "_view_of")

    def __init__(self, entities: dict[str, list[Any]], values: dict[str, list[Any]], status: dict[str, list[str]],
                 event_us: dict[str, list[int | None]], view_of: dict[str, str]) -> None:
        self.entities = entities
        self.values = values
        self.status = status
        self._event_us = event_us
        self._view_of = view_of

    @property
    def event_times(self) -> dict[str, list[datetime | None]]:
        return {view: [_datetime(us) for us in times] for view, times in self._event_us.items()}

    @property
    def missing(self) -> dict[str, list[bool]]:
        """Output name -> per entity, True when the value is missing (not found, expired or after ``as_of``)."""
        return {out: [s != PRESENT for s in self.status[view]] for out, view in self._view_of.items()
                if view in self.status}

    def to_dict(self) -> dict[str, list[Any]]:
        """Entity keys and features, column-oriented: ``{"zone_id": [17], "avg_fare": [12.5]}``."""
        return {**self.entities, **self.values}

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per entity (what a model's ``predict`` takes)."""
        columns = self.to_dict()
        n = len(next(iter(columns.values()))) if columns else 0
        return [{k: v[i] for k, v in columns.items()} for i in range(n)]

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.to_dict())

    def to_json(self) -> dict[str, Any]:
        times = {v: [None if us is None else _datetime(us).isoformat() for us in t]  # type: ignore[union-attr]
                 for v, t in self._event_us.items()}
        return {"features": self.to_dict(), "status": self.status, "event_times": times, "views": self._view_of}

    @classmethod
    def from_json(cls, data: dict[str, Any], entity_keys: Sequence[str]) -> OnlineResult:
        """The result ``to_json`` wrote (a server's answer), with ``entity_keys`` telling keys from features.

        >>> r = OnlineResult({"id": [1]}, {"x": [2.0]}, {"v": ["present"]}, {"v": [0]}, {"x": "v"})
        >>> OnlineResult.from_json(r.to_json(), ["id"]).to_records(), r.event_times == r.event_times
        ([{'id': 1, 'x': 2.0}], True)
        """
        columns = data["features"]
        entities = {k: v for k, v in columns.items() if k in entity_keys}
        values = {k: v for k, v in columns.items() if k not in entity_keys}
        event_us = {view: [None if t is None else instant_us(datetime.fromisoformat(t), "event_times") for t in times]
                    for view, times in data["event_times"].items()}
        return cls(entities, values, data["status"], event_us, data.get("views", {}))


@dataclass
class _Group:
    view: str
    keys: tuple[str, ...]
    ttl_us: int | None
    positions: list[tuple[str, int]]  # (output name, index into the stored row)
    width: int = 1  # values in a stored row: the event time, then every feature of the view
    booleans: tuple[str, ...] = ()  # outputs stored as 0/1 by stores without a boolean type


class ServingPlan:
    """A compiled online request: readers, keys, TTLs and transforms resolved once.

    ``check_keys(entities)`` checks entity keys against their declared types; the store sets it when
    it compiles the plan (a plan built by hand accepts any key).
    """

    def __init__(self, request: Request, read: BatchReader, stored_index: dict[str, dict[str, int]]) -> None:
        self.request = request
        self._read = read
        self.entity_keys = request.entity_keys
        self.groups: list[_Group] = []
        self.view_of: dict[str, str] = {}
        self.check_keys: Callable[[Any], None] = lambda entities: None
        self.key_types: dict[str, Any] | None = None  # {join key: (entity, declared type)}, set by the store
        for v in request.views:
            positions = [(out, stored_index[v.view.name][f] + 1) for f, out in zip(v.features, v.outputs, strict=True)]
            ttl = v.view.ttl // _US if v.view.ttl else None  # exact microseconds, like event times
            types = {f.name: f.dtype.name for f in v.view.schema}
            booleans = tuple(o for f, o in zip(v.features, v.outputs, strict=True) if types[f] == "Bool")
            width = len(stored_index[v.view.name]) + 1
            self.groups.append(_Group(v.view.name, tuple(v.keys), ttl, positions, width, booleans))
            for out, _ in positions:
                self.view_of[out] = v.view.name
        self.hidden = {o for v in request.views for f, o in zip(v.features, v.outputs, strict=True) if f in v.hidden}
        self.on_demand = request.on_demand
        self.request_columns = request.request_columns

    @property
    def outputs(self) -> list[str]:
        """The feature columns a read returns, in order (entity keys come first in ``to_dict``)."""
        return self.request.outputs

    def _columns(self, entities: Any) -> tuple[dict[str, Sequence[Any]], int]:
        """The entity key columns (records turned into columns) and their common length."""
        if not isinstance(entities, dict):
            if isinstance(entities, list) and all(isinstance(r, dict) for r in entities):
                return {k: [r.get(k) for r in entities] for k in self.entity_keys}, len(entities)
            raise InvalidInputError(field="entities", value=type(entities).__name__,
                                    expected='a mapping like {"zone_id": [17, 18]} or records [{"zone_id": 17}, ...]')
        try:
            columns = {k: entities[k] for k in self.entity_keys}
        except KeyError:
            raise InvalidInputError(field="entities", value=sorted(map(str, entities)),
                                    expected=f"the join keys {self.entity_keys}, each a list of values") from None
        lengths = set()
        for key, col in columns.items():
            if isinstance(col, str | bytes) or not hasattr(col, "__len__"):
                raise InvalidInputError(field=f"entities.{key}", value=str(col)[:60],
                                        expected=f'a list of values, e.g. {{"{key}": [17, 18]}}')
            lengths.add(len(col))
        if len(lengths) > 1:
            raise InvalidInputError(field="entities", value={k: len(v) for k, v in columns.items()},
                                    expected="the same number of values for every key")
        return columns, lengths.pop() if lengths else 0

    @staticmethod
    def _keys(columns: dict[str, Sequence[Any]], group: _Group) -> list[str]:
        if len(group.keys) == 1:
            return list(map(str, columns[group.keys[0]]))
        return list(map(SEP.join, zip(*(map(str, columns[k]) for k in group.keys), strict=True)))

    def read(self, entities: dict[str, Sequence[Any]] | list[dict[str, Any]],
             request_data: dict[str, Sequence[Any]] | None = None, as_of: datetime | None = None) -> OnlineResult:
        """Look up every view, flag missing, expired or too recent values, then run on-demand transforms.

        TTLs are checked against now, or against ``as_of`` (a timezone-aware datetime: replaying a past
        moment), in which case a stored value newer than ``as_of`` is withheld (status ``"after_as_of"``).
        """
        columns, n = self._columns(entities)
        if as_of is None:
            now_us, limit = time.time_ns() // 1000, None
        else:
            now_us = limit = instant_us(as_of)
        values: dict[str, list[Any]] = {}
        status: dict[str, list[str]] = {}
        event_us: dict[str, list[int | None]] = {}
        key_lists = [self._keys(columns, g) for g in self.groups]
        for g, rows in zip(self.groups, self._read(key_lists), strict=True):
            _fill(g, rows, n, now_us, limit, values, status, event_us)
        if self.on_demand:
            self._transform(values, request_data or {}, n)
        for out in self.hidden:
            values.pop(out, None)
        ent = {k: list(v) for k, v in columns.items()}
        return OnlineResult(ent, values, status, event_us, self.view_of)

    def _transform(self, values: dict[str, list[Any]], request_data: dict[str, Sequence[Any]], n: int) -> None:
        import pandas as pd

        missing = [c for c in self.request_columns if c not in request_data]
        if missing:
            raise InvalidInputError(field="request", value=sorted(request_data),
                                    expected=f"the request values {self.request_columns} (missing {missing})")
        for od in self.on_demand:
            frame = pd.DataFrame({name: values[col] for name, col in od.input_columns.items()}, index=range(n))
            for f in od.view.request:
                frame[f.name] = list(request_data[f.name])
            out = od.view.transform(frame)
            for f, o in zip(od.features, od.outputs, strict=True):
                values[o] = [None if isinstance(v, float) and v != v else v for v in out[f].tolist()]


def _fill(g: _Group, rows: list[Row | None], n: int, now_us: int, limit: int | None, values: dict[str, list[Any]],
          status: dict[str, list[str]], event_us: dict[str, list[int | None]]) -> None:
    """Turn one view's stored rows (in entity order; absent: None or an event time of None) into columns."""
    if not n:
        status[g.view], event_us[g.view] = [], []
        values.update((out, []) for out, _ in g.positions)
        return
    absent = (None,) * g.width
    if None in rows:
        rows = [absent if r is None else r for r in rows]
    stored = list(zip(*rows, strict=True))
    times = stored[0]
    cutoff = None if g.ttl_us is None else now_us - g.ttl_us
    if None not in times and (cutoff is None or min(times) >= cutoff) and (limit is None or max(times) <= limit):
        status[g.view] = [PRESENT] * n  # every entity found, fresh, and not after as_of: no per-entity work
        event_us[g.view] = list(times)
    else:  # one pass over the entities, then the same transposition with withheld rows blanked
        st = [NOT_FOUND if t is None else AFTER_AS_OF if limit is not None and t > limit else
              EXPIRED if cutoff is not None and t < cutoff else PRESENT for t in times]
        status[g.view] = st
        event_us[g.view] = [t if s is PRESENT or s is EXPIRED else None for t, s in zip(times, st, strict=True)]
        stored = list(zip(*[r if s is PRESENT else absent for r, s in zip(rows, st, strict=True)], strict=True))
    for out, idx in g.positions:
        values[out] = list(stored[idx])
    for out in g.booleans:
        values[out] = [None if v is None else bool(v) for v in values[out]]
