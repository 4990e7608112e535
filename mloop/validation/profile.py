"""Profiles: compact, mergeable per-column summaries that drift can be measured on without raw data.

A numeric column keeps its counts, moments, extremes, a histogram over bins fixed by the reference
(even bins over its central 99.8%, or one bin per value for columns with few distinct values) and,
while it holds at most ``SAMPLE_MAX`` values, the values themselves (so small samples get exact tests).
A categorical column keeps its category frequencies. Profiles built on the same bins add up: a day of
live windows merges into one.

>>> import numpy as np, pandas as pd
>>> ref = profile(pd.DataFrame({"x": np.arange(5000.0), "c": ["a", "b"] * 2500}))
>>> day = profile(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "z"]}), reference=ref)
>>> both = day.merge(day)
>>> both["x"].count, both["c"].freq
(4, {'a': 2, 'z': 2})
>>> Profile.from_dict(both.to_dict())["x"].count
4
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import InvalidInputError
from mloop.validation._data import Col, Frame, as_frame

__all__ = ["CategoricalProfile", "NumericProfile", "Profile", "profile", "PROFILE_VERSION"]

PROFILE_VERSION = 1
SAMPLE_MAX = 1000  # up to this many values a profile keeps them, for exact small-sample tests
BINS = 200
EDGE_SAMPLE = 50_000  # reference edges come from at most this many evenly spaced values
MAX_CATEGORIES = 1000
PARALLEL_CELLS = 2_000_000  # above this many cells, columns are profiled on threads
OTHER = "__other__"


@dataclass
class NumericProfile:
    """Counts, moments, extremes and a histogram over fixed edges; mergeable when the edges match."""

    count: int  # finite values
    nulls: int
    inf: int
    sum: float
    sumsq: float
    min: float
    max: float
    edges: np.ndarray  # k+1 increasing edges
    counts: np.ndarray  # k+2: below edges[0], k bins (the last closed), above edges[-1]
    sample: np.ndarray | None = None
    tail_sums: tuple[float, float] = (0.0, 0.0)  # sums of the values below and above the edges
    kind: str = field(default="numeric", init=False)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else float("nan")

    @property
    def std(self) -> float:
        if self.count < 2:
            return 0.0
        var = (self.sumsq - self.sum**2 / self.count) / (self.count - 1)
        return float(np.sqrt(max(var, 0.0)))

    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, F(x)): the piecewise-linear CDF implied by the histogram (mass spread evenly within a bin)."""
        total = self.counts.sum()
        if not total:
            return np.array([0.0]), np.array([1.0])
        lo, hi = min(self.min, self.edges[0]), max(self.max, self.edges[-1])
        # a tail's mass spreads evenly over the span that gives it its true mean (what Wasserstein weighs)
        below, above = self.counts[0], self.counts[-1]
        if below:
            lo = max(lo, 2 * self.tail_sums[0] / below - self.edges[0])
        if above:
            hi = min(hi, 2 * self.tail_sums[1] / above - self.edges[-1])
        x = np.concatenate(([lo], self.edges, [hi]))
        f = np.concatenate(([0.0], np.cumsum(self.counts) / total))
        return x, f

    def merge(self, other: NumericProfile) -> NumericProfile:
        if self.edges.shape != other.edges.shape or not np.array_equal(self.edges, other.edges):
            raise InvalidInputError(field="profile", value="different bins",
                                    expected="profiles built against the same reference (profile(..., reference=ref))")
        sample = None
        if self.sample is not None and other.sample is not None and len(self.sample) + len(other.sample) <= SAMPLE_MAX:
            sample = np.concatenate([self.sample, other.sample])
        return NumericProfile(self.count + other.count, self.nulls + other.nulls, self.inf + other.inf,
                              self.sum + other.sum, self.sumsq + other.sumsq, _nanmin(self.min, other.min),
                              _nanmax(self.max, other.max), self.edges, self.counts + other.counts, sample,
                              (self.tail_sums[0] + other.tail_sums[0], self.tail_sums[1] + other.tail_sums[1]))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "numeric", "count": self.count, "nulls": self.nulls, "inf": self.inf, "sum": self.sum,
                "sumsq": self.sumsq, "min": _f(self.min), "max": _f(self.max), "edges": self.edges.tolist(),
                "counts": self.counts.tolist(), "sample": None if self.sample is None else self.sample.tolist(),
                "tail_sums": list(self.tail_sums)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericProfile:
        return cls(int(d["count"]), int(d["nulls"]), int(d["inf"]), float(d["sum"]), float(d["sumsq"]),
                   _unf(d["min"]), _unf(d["max"]), np.asarray(d["edges"], dtype=float),
                   np.asarray(d["counts"], dtype=np.int64),
                   None if d.get("sample") is None else np.asarray(d["sample"], dtype=float),
                   tuple(float(v) for v in d.get("tail_sums", (0.0, 0.0))))  # type: ignore[arg-type]


@dataclass
class CategoricalProfile:
    """Category frequencies (the rarest beyond ``MAX_CATEGORIES`` pooled as ``__other__``)."""

    count: int
    nulls: int
    freq: dict[Any, int]
    kind: str = field(default="categorical", init=False)

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        freq = dict(self.freq)
        for key, value in other.freq.items():
            freq[key] = freq.get(key, 0) + value
        return CategoricalProfile(self.count + other.count, self.nulls + other.nulls, _cap(freq))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "count": self.count, "nulls": self.nulls,
                "freq": [[k, v] for k, v in self.freq.items()]}  # pairs keep non-string keys

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalProfile:
        return cls(int(d["count"]), int(d["nulls"]), {k: int(v) for k, v in d["freq"]})


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass
class Profile:
    """Per-column profiles of one table (or of many windows merged)."""

    columns: dict[str, ColumnProfile]
    rows: int
    version: int = PROFILE_VERSION

    def __getitem__(self, name: str) -> ColumnProfile:
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidInputError(field="column", value=name, expected=f"one of {list(self.columns)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def merge(self, other: Profile) -> Profile:
        """The profile of both tables together (they must share the reference's bins)."""
        missing = set(self.columns) ^ set(other.columns)
        if missing:
            raise InvalidInputError(field="profile", value=sorted(missing), expected="the same columns in both")
        merged = {}
        for name, mine in self.columns.items():
            theirs = other.columns[name]
            if mine.kind != theirs.kind:
                raise InvalidInputError(field=name, value=theirs.kind, expected=f"a {mine.kind} profile")
            merged[name] = mine.merge(theirs)  # type: ignore[arg-type]
        return Profile(merged, self.rows + other.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mloop.profile", "version": self.version, "rows": self.rows,
                "columns": {n: c.to_dict() for n, c in self.columns.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        if data.get("kind") != "mloop.profile":
            raise InvalidInputError(field="profile", value=data.get("kind"), expected="kind 'mloop.profile'")
        if int(data.get("version", 0)) > PROFILE_VERSION:
            raise InvalidInputError(field="profile.version", value=data.get("version"),
                                    expected=f"<= {PROFILE_VERSION} (upgrade mloop)")
        columns: dict[str, ColumnProfile] = {
            n: NumericProfile.from_dict(c) if c["kind"] == "numeric" else CategoricalProfile.from_dict(c)
            for n, c in data["columns"].items()}
        return cls(columns, int(data["rows"]), int(data["version"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError(field="profile", value=str(path), expected="an existing profile JSON file")
        return cls.from_dict(json.loads(path.read_text()))


def column_kind(col: Col) -> str | None:
    """numeric, categorical, or None for columns drift leaves out (datetimes, all-null)."""
    kind = col.kind
    if kind in ("integer", "float"):
        return "numeric"
    if kind in ("string", "boolean", "mixed"):
        return "categorical"
    return None


def profile(data: Any, reference: Profile | None = None, columns: list[str] | None = None,
            kinds: dict[str, str] | None = None, bins: int = BINS) -> Profile:
    """Profile ``data``; with ``reference``, numeric columns use the reference's bins so the two compare and merge.

    ``kinds`` forces a column to ``"numeric"`` or ``"categorical"`` (e.g. integer codes that are categories).
    """
    frame = as_frame(data)
    names = [n for n in _columns(frame, reference, columns, kinds) if n in frame]
    kinds = kinds or {}

    def one(name: str) -> ColumnProfile | None:
        col = frame.col(name)
        ref = reference.columns.get(name) if reference is not None else None
        kind = ref.kind if ref is not None else kinds.get(name) or column_kind(col)
        if kind is None and col.kind == "datetime" and columns is not None:
            kind = "numeric"  # listed on purpose: compared as epoch seconds
        if kind == "numeric":
            return numeric_profile(col, ref.edges if isinstance(ref, NumericProfile) else None, bins)
        if kind == "categorical":
            return categorical_profile(col)
        return None

    for name in names:
        frame.col(name)  # wrap every column up front: workers then only read
    if frame.n_rows * len(names) >= PARALLEL_CELLS and len(names) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:  # NumPy/Arrow release the GIL
            found = list(pool.map(one, names))
    else:
        found = [one(name) for name in names]
    out = {name: p for name, p in zip(names, found, strict=True) if p is not None}
    return Profile(out, frame.n_rows)


def _columns(frame: Frame, reference: Profile | None, columns: list[str] | None,
             kinds: dict[str, str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    if reference is not None:
        return list(reference.columns)
    return [n for n in frame.names if (kinds or {}).get(n) or column_kind(frame.col(n))]


def numeric_profile(col: Col, edges: np.ndarray | None = None, bins: int = BINS) -> NumericProfile:
    values = col.numeric
    finite_mask = np.isfinite(values)
    all_finite = bool(finite_mask.all())
    finite = values if all_finite else values[finite_mask]
    nan = 0 if all_finite else int(np.isnan(values).sum())
    count = int(finite.size)
    lo, hi = (float(finite.min()), float(finite.max())) if count else (float("nan"), float("nan"))
    if edges is None:
        edges = reference_edges(finite, bins, lo, hi)
    counts = np.bincount(bin_index(finite, edges), minlength=len(edges) + 1).astype(np.int64)
    tails = (float(finite[finite < edges[0]].sum()) if counts[0] else 0.0,
             float(finite[finite > edges[-1]].sum()) if counts[-1] else 0.0)
    return NumericProfile(
        count=count, nulls=nan, inf=int(len(values) - count - nan), sum=float(finite.sum()),
        sumsq=float(np.square(finite).sum()), min=lo, max=hi, edges=edges, counts=counts,
        sample=finite.copy() if count <= SAMPLE_MAX else None, tail_sums=tails)


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """0 below ``edges[0]``, i in 1..k for bin i (the last one closed), k+1 above ``edges[-1]``.

    Evenly spaced edges (the usual case) are binned arithmetically; others by binary search.
    """
    k = len(edges) - 1
    width = (edges[-1] - edges[0]) / k if k else 0.0
    if k and width > 0 and np.allclose(np.diff(edges), width, rtol=1e-9, atol=0):
        scaled = (values - edges[0]) * (1.0 / width)
        scaled += 1.0
        np.clip(scaled, 0.0, k + 1.0, out=scaled)  # non-negative now, so truncation is floor
        idx = scaled.astype(np.int64)
        idx[values == edges[-1]] = k
        return idx
    idx = np.searchsorted(edges, values, side="right")
    idx[values == edges[-1]] = k
    return idx


def reference_edges(finite: np.ndarray, bins: int = BINS, lo: float | None = None,
                    hi: float | None = None) -> np.ndarray:
    """Edges fixed by the reference: one bin per value for small integer ranges or few distinct values,
    else ``bins`` even bins over the central 99.8% (the tails fall in the below/above bins)."""
    if finite.size == 0:
        return np.array([0.0, 1.0])
    lo = float(finite.min()) if lo is None else lo
    hi = float(finite.max()) if hi is None else hi
    if lo == hi:
        return np.array([lo, hi])
    step = max(1, finite.size // EDGE_SAMPLE)
    sub = finite[::step]
    if hi - lo <= bins and np.array_equal(sub, np.round(sub)):  # small integers: one bin each
        return np.arange(lo - 0.5, hi + 1.0)
    head = np.unique(sub[:2000])
    if head.size <= bins // 4:
        distinct = np.unique(sub)
        if distinct.size <= bins:
            mids = (distinct[1:] + distinct[:-1]) / 2
            return np.concatenate(([distinct[0]], mids, [distinct[-1]]))
    k = max(1, int(0.001 * (sub.size - 1)))
    part = np.partition(sub, (k, sub.size - 1 - k))
    a, b = float(part[k]), float(part[sub.size - 1 - k])
    if not b > a:
        a, b = lo, hi
    return np.linspace(a, b, bins + 1)


def categorical_profile(col: Col) -> CategoricalProfile:
    codes, uniques = col.factorize()
    valid = codes[codes >= 0]
    counts = np.bincount(valid, minlength=len(uniques))
    keys = [_key(u) for u in uniques.tolist()]
    freq: dict[Any, int] = {}
    for key, c in zip(keys, counts.tolist(), strict=True):  # one entry per distinct value, not per row
        freq[key] = freq.get(key, 0) + c
    return CategoricalProfile(int(valid.size), int(len(codes) - valid.size), _cap(freq))


def _key(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, str | bool | int | float) or value is None else str(value)


def _cap(freq: dict[Any, int]) -> dict[Any, int]:
    if len(freq) <= MAX_CATEGORIES:
        return freq
    ranked = sorted(freq.items(), key=lambda kv: -kv[1])
    kept = dict(ranked[: MAX_CATEGORIES - 1])
    kept[OTHER] = kept.get(OTHER, 0) + sum(v for _, v in ranked[MAX_CATEGORIES - 1:])
    return kept


def _nanmin(a: float, b: float) -> float:
    return float(np.nanmin([a, b])) if not (np.isnan(a) and np.isnan(b)) else float("nan")


def _nanmax(a: float, b: float) -> float:
    return float(np.nanmax([a, b])) if not (np.isnan(a) and np.isnan(b)) else float("nan")


def _f(x: float) -> float | None:
    return None if x != x else x


def _unf(x: float | None) -> float:
    return float("nan") if x is None else float(x)
