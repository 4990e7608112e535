"""Online retrieval: a serving plan compiled once per feature list (or service), then reused per request.

The plan holds, per feature view, the store's reader (a prepared statement or an
MGET), the join keys and the TTL; a request only encodes keys, reads, and checks
event times against the TTL. Values older than the TTL come back as None with
status ``"expired"``; absent entities come back as None with ``"not_found"``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mloop.errors import InvalidInputError
from mloop.features.online.base import BatchReader
from mloop.features.plan import Request

__all__ = ["OnlineResult", "ServingPlan"]

PRESENT, NOT_FOUND, EXPIRED = "present", "not_found", "expired"
SEP = "\x1f"


class OnlineResult:
    """Feature values for a list of entities, column-oriented.

    - ``values``: output name -> list of values (None when missing)
    - ``status``: feature view -> list of ``"present" | "not_found" | "expired"``
    - ``event_times``: feature view -> list of aware datetimes (None when not found)
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
        return {view: [None if us is None else datetime.fromtimestamp(us / 1e6, tz=UTC) for us in times]
                for view, times in self._event_us.items()}

    @property
    def missing(self) -> dict[str, list[bool]]:
        """Output name -> per entity, True when the value is missing (not found or expired)."""
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
        times = {v: [None if us is None else datetime.fromtimestamp(us / 1e6, tz=UTC).isoformat() for us in t]
                 for v, t in self._event_us.items()}
        return {"features": self.to_dict(), "status": self.status, "event_times": times}


@dataclass
class _Group:
    view: str
    keys: tuple[str, ...]
    ttl_us: int | None
    positions: list[tuple[str, int]]  # (output name, index into the stored row)
    empty: tuple[None, ...] = ()  # a stored row of nulls (missing or expired)
    booleans: tuple[str, ...] = ()  # outputs stored as 0/1 by stores without a boolean type


class ServingPlan:
    """A compiled online request: readers, keys, TTLs and transforms resolved once."""

    def __init__(self, request: Request, read: BatchReader, stored_index: dict[str, dict[str, int]]) -> None:
        self.request = request
        self._read = read
        self.entity_keys = request.entity_keys
        self.groups: list[_Group] = []
        self.view_of: dict[str, str] = {}
        for v in request.views:
            positions = [(out, stored_index[v.view.name][f] + 1) for f, out in zip(v.features, v.outputs, strict=True)]
            ttl = int(v.view.ttl.total_seconds() * 1_000_000) if v.view.ttl else None
            empty = (None,) * (len(stored_index[v.view.name]) + 1)
            types = {f.name: f.dtype.name for f in v.view.schema}
            booleans = tuple(o for f, o in zip(v.features, v.outputs, strict=True) if types[f] == "Bool")
            self.groups.append(_Group(v.view.name, tuple(v.keys), ttl, positions, empty, booleans))
            for out, _ in positions:
                self.view_of[out] = v.view.name
        self.hidden = {o for v in request.views for f, o in zip(v.features, v.outputs, strict=True) if f in v.hidden}
        self.on_demand = request.on_demand
        self.request_columns = request.request_columns

    @property
    def outputs(self) -> list[str]:
        """The feature columns a read returns, in order (entity keys come first in ``to_dict``)."""
        return self.request.outputs

    def _keys(self, entities: dict[str, Sequence[Any]], group: _Group) -> list[str]:
        if len(group.keys) == 1:
            try:
                col = entities[group.keys[0]]
            except KeyError:
                raise self._missing_key(entities) from None
            return [str(k) for k in col]
        try:
            cols = [entities[k] for k in group.keys]
        except KeyError:
            raise self._missing_key(entities) from None
        return [SEP.join(map(str, row)) for row in zip(*cols, strict=True)]

    def _missing_key(self, entities: dict[str, Any]) -> InvalidInputError:
        return InvalidInputError(field="entities", value=sorted(entities),
                                 expected=f"the join keys {self.entity_keys}, each a list of values")

    def read(self, entities: dict[str, Sequence[Any]] | list[dict[str, Any]],
             request_data: dict[str, Sequence[Any]] | None = None, as_of: datetime | None = None) -> OnlineResult:
        """Look up every view, flag missing or expired values, then run on-demand transforms.

        TTLs are checked against now, or against ``as_of`` (replaying a past moment).
        """
        if not isinstance(entities, dict):
            if isinstance(entities, list) and all(isinstance(r, dict) for r in entities):
                entities = {k: [r.get(k) for r in entities] for k in self.entity_keys}  # records
            else:
                raise InvalidInputError(field="entities", value=type(entities).__name__,
                                        expected='a mapping like {"zone_id": [17, 18]} or records '
                                                 '[{"zone_id": 17}, ...]')
        now_us = time.time_ns() // 1000 if as_of is None else int(as_of.timestamp() * 1_000_000)
        values: dict[str, list[Any]] = {}
        status: dict[str, list[str]] = {}
        event_us: dict[str, list[int | None]] = {}
        key_lists = [self._keys(entities, g) for g in self.groups]
        n = len(key_lists[0]) if key_lists else 0
        if any(len(k) != n for k in key_lists):
            raise InvalidInputError(field="entities", value={k: len(v) for k, v in entities.items()},
                                    expected="the same number of values for every key")
        for g, rows in zip(self.groups, self._read(key_lists), strict=True):
            cutoff = None if g.ttl_us is None else now_us - g.ttl_us
            st: list[str] = [PRESENT] * n
            ts: list[int | None] = [None] * n
            clean = rows
            for i, row in enumerate(rows):
                if row is None:
                    st[i] = NOT_FOUND
                    if clean is rows:
                        clean = list(rows)
                    clean[i] = g.empty
                else:
                    ts[i] = row[0]
                    if cutoff is not None and row[0] < cutoff:
                        st[i] = EXPIRED
                        if clean is rows:
                            clean = list(rows)
                        clean[i] = g.empty
            status[g.view] = st
            event_us[g.view] = ts
            columns = list(zip(*clean, strict=True)) if n else []
            for out, idx in g.positions:
                values[out] = list(columns[idx]) if n else []
            for out in g.booleans:
                values[out] = [None if v is None else bool(v) for v in values[out]]
        if self.on_demand:
            self._transform(values, request_data or {}, max(n, 0))
        for out in self.hidden:
            values.pop(out, None)
        ent = {k: list(entities[k]) for k in self.entity_keys if k in entities}
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
