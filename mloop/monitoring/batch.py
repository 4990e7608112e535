"""Every window of a batch of the prediction log summarized together, with the figures ``windows.summarize`` gives
for each window's rows on their own.

A batch holds a few hours of windows of every version and role. Summarized one window at a time, the work done per
row is repeated per window with pandas' overhead each time: splitting the rows, decoding the outputs, finding each
request's first row, turning columns into arrays, factorizing categories, checking the schema. ``WindowBatch``
sorts the batch once by (window, version, role), so each window is a contiguous slice, and does that per-row work
once; what is left per window is NumPy on its slice, through the same functions on the same values in the same
order, so the figures are exactly ``summarize``'s. Columns whose logical type depends on their values (object
columns) are profiled, and the schema checked, window by window as ``summarize`` does.

>>> rows = pd.DataFrame({"id": ["a-0", "b-0", "c-0"], "time": [1_000, 301_000, 2_000], "version": "1",
...                      "role": "primary", "latency_ms": [4.0, 9.0, 5.0], "output": ["1.5", "2", "3"],
...                      "proba": [None] * 3, "km": [1.0, None, 2.0]})
>>> batch = WindowBatch(rows, step=300_000)
>>> [(w.start, w.rows) for w in batch.windows]
[(0, 2), (300000, 1)]
>>> found = batch.summarize(batch.windows[0], task="regression")
>>> {(p.metric, p.column): p.value for p in found.points if p.metric in ("rows", "null_share")}
{('rows', ''): 2.0, ('null_share', 'km'): 0.0}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mloop.monitoring._log import decode, parsed_numbers
from mloop.monitoring.windows import (
    LOG_COLUMNS,
    PREDICTION,
    Segments,
    Summary,
    _drift,
    _performance,
    _predictions,
    _quality,
    add_traffic,
    first_attempts,
)
from mloop.validation.profile import (
    BINS,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    Profile,
    bin_index,
    categorical_profile_of,
    category_key,
    numeric_profile_of,
    profile,
)
from mloop.validation.schema import Schema
from mloop.validation.validate import violation_masks

__all__ = ["Window", "WindowBatch"]


@dataclass(frozen=True, slots=True)
class Window:
    """One (window, version, role) of a batch: its rows are the batch's sorted rows ``[begin, end)``."""

    start: int
    version: str
    role: str
    begin: int
    end: int
    index: int  # its place among the batch's windows

    @property
    def rows(self) -> int:
        return self.end - self.begin


@dataclass
class _Column:
    """One input prepared for every window: its nulls per window, and its values as floats (numbers) or as codes
    into ``keys`` (Arrow-backed text); neither for a column of Python objects, profiled window by window."""

    nulls: np.ndarray  # per window
    numbers: np.ndarray | None = None
    codes: np.ndarray | None = None
    keys: list[Any] | None = None


class WindowBatch:
    """The rows of a batch sorted by (window start, version, role), each kept in its order within its window."""

    def __init__(self, rows: pd.DataFrame, step: int) -> None:
        self.source = rows
        self.order, self.bounds, self.windows = _group(rows, step)
        self.inputs = [c for c in rows.columns if c not in LOG_COLUMNS]
        self.first = self._sorted(first_attempts(rows["id"]))
        self.latency = self._sorted(rows["latency_ms"].to_numpy(dtype="float64"))
        self._decode_outputs(rows["output"])
        self.columns = {name: self._prepare(rows[name]) for name in self.inputs}
        labelled = rows["label"].notna().to_numpy() if "label" in rows else np.zeros(len(rows), dtype=bool)
        self.labelled = self._per_window(self._sorted(labelled))
        self._checks: dict[int, list[tuple[str, str, np.ndarray]] | None] = {}
        self._bins: dict[tuple[str, int], np.ndarray] = {}

    # ------------------------------------------------------------------ the batch's per-row work, done once
    def _sorted(self, values: np.ndarray) -> np.ndarray:
        return values if self.order is None else values[self.order]

    def _per_window(self, mask: np.ndarray) -> np.ndarray:
        """How many rows of each window ``mask`` (sorted) holds."""
        if not len(mask):
            return np.zeros(0, dtype=np.int64)
        return np.add.reduceat(mask.astype(np.int64), self.bounds)

    def _decode_outputs(self, texts: pd.Series) -> None:
        """The outputs as numbers when every one of the batch is (or is missing), as ``decode`` makes those of
        each of its windows; else (class names) ``None``, and each window's are decoded on their own."""
        numbers = parsed_numbers(texts)
        self.as_float = None if numbers is None else self._sorted(numbers.to_numpy())

    def _prepare(self, values: pd.Series) -> _Column:
        column = _Column(self._per_window(self._sorted(values.isna().to_numpy())))
        if values.dtype.kind in "fiu":
            column.numbers = self._sorted(values.to_numpy("float64", na_value=np.nan))
        elif isinstance(values.dtype, pd.StringDtype):
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            column.codes = self._sorted(codes.astype(np.int64, copy=False))
            column.keys = [category_key(u) for u in np.asarray(uniques, dtype=object).tolist()]
        return column

    def frame(self, window: Window, columns: list[str]) -> pd.DataFrame:
        """The window's rows of ``columns``, as ``summarize`` gets them."""
        picked = self.source[columns]
        if self.order is None:
            return picked.iloc[window.begin:window.end]
        return picked.iloc[self.order[window.begin:window.end]]

    # ------------------------------------------------------------------ one window
    def summarize(self, window: Window, *, task: str, reference: Profile | None = None, schema: Schema | None = None,
                  previous: Profile | None = None, slices: tuple[str, ...] = (),
                  known: set[str] | frozenset[str] = frozenset(), segments: Segments = ()) -> Summary:
        """``summarize`` of the window's rows; inputs not in ``known`` that are all missing in the window are left
        out (another version's inputs)."""
        a, b, n = window.begin, window.end, window.rows
        inputs = [c for c in self.inputs if c in known or self.columns[c].nulls[window.index] < n]
        out = Summary()
        add_traffic(out, n, self.latency[a:b][self.first[a:b]])
        predicted = self._predicted(window)
        _predictions(predicted, task, out)
        for name in inputs:
            out.add("null_share", float(self.columns[name].nulls[window.index] / n), name)
        out.profile = self._profile(window, inputs, predicted, reference)
        _drift(out, reference, out.profile, "drift")
        _drift(out, previous, out.profile, "drift_prev")
        if schema is not None:
            self._quality(window, inputs, schema, out)
        if "label" in self.source:
            if self.labelled[window.index]:
                # a slice by an input left out of this window is left out, as that input's column is
                read = (*slices, *_fields_of(segments))
                wanted = [c for c in ("label", "proba", *read) if c in self.source
                          and (c not in self.inputs or c in inputs)]
                frame = self.frame(window, list(dict.fromkeys(wanted)))
                _performance(frame, predicted, task, slices, out, segments)
            else:
                out.add("labelled", 0)
        return out

    def _predicted(self, window: Window) -> pd.Series:
        if self.as_float is None:
            return decode(self.frame(window, ["output"])["output"])
        return pd.Series(self.as_float[window.begin:window.end], copy=False)

    def _profile(self, window: Window, inputs: list[str], predicted: pd.Series,
                 reference: Profile | None) -> Profile:
        """``windows._window_profile``: on the training profile's bins for the columns it has, the rest on their
        own."""
        names = [*inputs, PREDICTION]
        ref = reference.columns if reference is not None else {}
        on_reference = {c: self._column_profile(window, c, predicted, ref[c]) for c in names if c in ref}
        own = {c: self._column_profile(window, c, predicted, None) for c in names if c not in ref}
        found = {**on_reference, **{c: p for c, p in own.items() if p is not None}}
        return Profile(found, window.rows)  # type: ignore[arg-type]

    def _column_profile(self, window: Window, name: str, predicted: pd.Series,
                        reference: ColumnProfile | None) -> ColumnProfile | None:
        a, b = window.begin, window.end
        numbers, codes, keys = None, None, None
        if name == PREDICTION:
            numbers = predicted.to_numpy() if predicted.dtype.kind == "f" else None
        else:
            column = self.columns[name]
            numbers, codes, keys = column.numbers, column.codes, column.keys
            numbers = numbers[a:b] if numbers is not None else None
        kind = reference.kind if reference is not None else None
        if numbers is not None and kind in ("numeric", None):
            if isinstance(reference, NumericProfile):
                binned = self._binned(name, reference.edges)[a:b] if name != PREDICTION else None
                return numeric_profile_of(numbers, reference.edges, BINS, binned)
            return numeric_profile_of(numbers, None, BINS)
        if codes is not None and keys is not None and kind in ("categorical", None):
            return _categories(codes[a:b], keys)
        values = predicted if name == PREDICTION else self.frame(window, [name])[name]
        shared = Profile({name: reference}, 0) if reference is not None else None
        return profile(pd.DataFrame({name: values.reset_index(drop=True)}), reference=shared).columns.get(name)

    def _binned(self, name: str, edges: np.ndarray) -> np.ndarray:
        """``bin_index`` of a numeric input on ``edges`` (a version's training bins), for every row of the batch."""
        key = (name, id(edges))
        if key not in self._bins:
            numbers = self.columns[name].numbers
            assert numbers is not None
            finite = np.where(np.isfinite(numbers), numbers, edges[0])  # the others are not counted
            self._bins[key] = bin_index(finite, edges)
        return self._bins[key]

    def _quality(self, window: Window, inputs: list[str], schema: Schema, out: Summary) -> None:
        """``windows._quality`` from the batch's failed-check masks counted per window; window by window when a
        check does not add up over rows (see ``violation_masks``)."""
        checks = self._checks_of(schema)
        if checks is None:
            _quality(self.frame(window, inputs), schema, out)
            return
        n, total = window.rows, 0
        for column, check, counts in checks:
            count = int(counts[window.index])
            if not count:
                continue
            limit = schema[column].max_null_share
            if check == "null_share" and not (limit is not None and self.columns[column].nulls[window.index] / n
                                              > limit):
                continue
            out.add("violations", count, column, check)
            total += count
        out.add("violation_share", min(total / n, 1.0))

    def _checks_of(self, schema: Schema) -> list[tuple[str, str, np.ndarray]] | None:
        """Each failed check of ``schema`` on the batch, with the rows it fails in each window; None when some
        check must be judged window by window."""
        if id(schema) not in self._checks:
            names = [c for c in schema.columns if c in self.columns]
            # a check adds up over rows when the column's type is the schema's kind of type whatever its values
            stable = all((self.columns[c].numbers is not None and schema[c].type in ("integer", "float"))
                         or (self.columns[c].codes is not None and schema[c].type == "string") for c in names)
            if not stable or not schema.allow_extra_columns or any(schema[c].unique for c in names):
                self._checks[id(schema)] = None
            else:
                masks = violation_masks(self.source[names], schema.select(names))
                self._checks[id(schema)] = [(column, check, self._per_window(self._sorted(mask)))
                                            for column, check, mask in masks]
        return self._checks[id(schema)]


def _fields_of(segments: Segments) -> list[str]:
    """The columns the declared segments read (their parser loaded only when there are some)."""
    if not segments:
        return []
    from mloop.monitoring.segments import segment_fields

    return segment_fields(list(segments))


def _group(rows: pd.DataFrame, step: int) -> tuple[np.ndarray | None, np.ndarray, list[Window]]:
    """The order that sorts ``rows`` by (window start, version, role) as a group-by does (``None``: they are in
    it already), where each window begins in that order, and the windows."""
    starts = rows["time"].to_numpy(dtype="int64") // step * step
    versions, version_names = pd.factorize(rows["version"], sort=True)
    roles, role_names = pd.factorize(rows["role"], sort=True)
    kept = (versions >= 0) & (roles >= 0)  # as a group-by, rows without a version or role are left out
    if not kept.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), []
    # one sort key: the window's place in the batch, then the version, then the role
    key = ((starts - starts.min()) // step * (len(version_names) + 1) + versions) * (len(role_names) + 1) + roles
    # the log is read in time order: a batch of one version and role needs no reordering at all
    in_order = bool(kept.all()) and bool(np.all(key[1:] >= key[:-1]))
    order = np.arange(len(key)) if in_order else np.flatnonzero(kept)[np.argsort(key[kept], kind="stable")]
    keys = np.stack([starts, versions, roles])[:, order]
    cuts = np.flatnonzero(np.any(keys[:, 1:] != keys[:, :-1], axis=0)) + 1
    bounds = np.concatenate(([0], cuts)).astype(np.int64)
    ends = np.concatenate((cuts, [len(order)]))
    windows = [Window(int(keys[0, a]), str(version_names[keys[1, a]]), str(role_names[keys[2, a]]), int(a), int(b), i)
               for i, (a, b) in enumerate(zip(bounds, ends, strict=True))]
    return None if in_order else order, bounds, windows


def _categories(codes: np.ndarray, keys: list[Any]) -> CategoricalProfile:
    """``categorical_profile`` of a window whose values are ``codes`` into the batch's ``keys``: renumbered in the
    order they first appear in the window, as factorizing the window alone numbers them."""
    present = codes[codes >= 0]
    local, firsts = pd.factorize(present)
    return categorical_profile_of(local.astype(np.int64, copy=False), [keys[i] for i in firsts.tolist()],
                                  int(len(codes) - len(present)))
