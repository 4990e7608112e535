"""Profiles: compact, mergeable per-column summaries that drift can be measured on without raw data.

A numeric column keeps its counts, moments, extremes, a histogram over bins fixed by the reference
(even bins over its central 99.8%, or one bin per value for columns with few distinct values), a
histogram of the values beyond those bins (``Tails``: at most 64 bins on each side, on a grid that widens
by powers of two, so current data far outside the reference keeps its shape) and, while it holds at most
``SAMPLE_MAX`` values, the values themselves (so small samples get exact tests).
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

__all__ = ["CategoricalProfile", "NumericProfile", "Profile", "Tails", "profile", "PROFILE_VERSION"]

PROFILE_VERSION = 1
SAMPLE_MAX = 1000  # up to this many values a profile keeps them, for exact small-sample tests
BINS = 200
EDGE_SAMPLE = 50_000  # reference edges come from at most this many evenly spaced values
MAX_CATEGORIES = 1000
PARALLEL_CELLS = 2_000_000  # above this many cells, columns are profiled on threads
OTHER = "__other__"
TAIL_BINS = 64  # bins of each tail histogram, at most


def base_width(edges: np.ndarray) -> float:
    """The tails' finest bin width: the reference's mean bin width (or a tiny one when it has a single value)."""
    k = len(edges) - 1
    with np.errstate(over="ignore"):
        span = float(edges[-1] - edges[0]) / k if k else 0.0
    if span == np.inf:  # edges near +/- the largest float: their span overflows, its k-th part does not (k > 1)
        span = min(float(edges[-1]) / k - float(edges[0]) / k, float(np.finfo(float).max))
    return span if span > 0 else max(abs(float(edges[0])), 1.0) * 2.0**-20


def max_scale(edges: np.ndarray) -> int:
    """The largest tail scale whose bin width ``base_width(edges) * 2 ** scale`` is a finite float.

    Values farther out than ``TAIL_BINS`` such bins (only those within a factor 2 of the largest float, or
    whose distance overflows) go to the last bin.

    >>> max_scale(np.array([0.0, 1.0])), max_scale(np.array([0.0, 1e300]))
    (1023, 27)
    """
    import math

    return 1024 - math.frexp(base_width(edges))[1]


@dataclass
class Tails:
    """Histograms of the values below ``edges[0]`` and above ``edges[-1]``.

    Bin ``j`` of a side holds the values whose distance beyond the edge is in ``[j, j + 1) * width``, with
    ``width = base_width(edges) * 2 ** scale`` and ``scale`` the smallest that keeps every ``j`` under
    ``TAIL_BINS``. Grids of different scales nest, so two tails merge exactly (the finer one is coarsened).

    >>> t = Tails.of(np.array([-3.0, 0.5, 12.0, 40.0]), np.array([0.0, 1.0]))
    >>> (t.scale, t.below, t.above)
    (0, {3: 1}, {11: 1, 39: 1})
    >>> far = t.merge(Tails.of(np.array([300.0]), np.array([0.0, 1.0])))  # bins 8 wide now
    >>> (far.scale, far.below, far.above)
    (3, {0: 1}, {1: 1, 4: 1, 37: 1})
    """

    scale: int
    below: dict[int, int]
    above: dict[int, int]

    @classmethod
    def of(cls, finite: np.ndarray, edges: np.ndarray) -> Tails:
        import math

        with np.errstate(over="ignore"):  # a distance past the largest float is inf: it lands in the last bin
            below, above = edges[0] - finite[finite < edges[0]], finite[finite > edges[-1]] - edges[-1]
        far = max(float(below.max()) if below.size else 0.0, float(above.max()) if above.size else 0.0)
        w, top = base_width(edges), max_scale(edges)
        # an underestimate of the smallest scale that fits, then up one at a time: the same data, the same scale
        scale = max(0, math.floor(math.log2(far) - math.log2(w)) - 8) if 0 < far < math.inf else 0
        scale = top if far == math.inf else min(scale, top)
        while scale < top and far / math.ldexp(w, scale) >= TAIL_BINS:
            scale += 1
        width = math.ldexp(w, scale)
        return cls(scale, _histogram(below, width), _histogram(above, width))

    def coarsened(self, scale: int) -> Tails:
        shift = scale - self.scale
        return Tails(scale, _shifted(self.below, shift), _shifted(self.above, shift))

    def merge(self, other: Tails) -> Tails:
        scale = max(self.scale, other.scale)
        a, b = self.coarsened(scale), other.coarsened(scale)
        merged = Tails(scale, _summed(a.below, b.below), _summed(a.above, b.above))
        while max([*merged.below, *merged.above, 0]) >= TAIL_BINS:
            merged = merged.coarsened(merged.scale + 1)
        return merged

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "below": sorted(self.below.items()), "above": sorted(self.above.items())}

    @classmethod
    def from_dict(cls, d: dict[str, Any], counts: np.ndarray, edges: np.ndarray) -> Tails:
        try:
            tails = cls(int(d["scale"]), {int(j): int(c) for j, c in d["below"]},
                        {int(j): int(c) for j, c in d["above"]})
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(field="profile.tails", value=str(d)[:200],
                                    expected="{'scale': int, 'below': [[bin, count], ...], 'above': [...]}") from exc
        bins = [*tails.below, *tails.above]
        if not 0 <= tails.scale <= max_scale(edges):
            raise InvalidInputError(field="profile.tails.scale", value=tails.scale,
                                    expected=f"an integer in [0, {max_scale(edges)}]: bins wider than the largest "
                                             "float do not exist")
        if any(not 0 <= j < TAIL_BINS for j in bins) or \
                sum(tails.below.values()) != counts[0] or sum(tails.above.values()) != counts[-1]:
            raise InvalidInputError(field="profile.tails", value=str(d)[:200],
                                    expected=f"bins in [0, {TAIL_BINS}) whose counts add up to the histogram's tails")
        return tails


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
    tails: Tails | None = None  # their histograms (None in profiles written before them)
    kind: str = field(default="numeric", init=False)
    # knots() of this profile, computed once: a training profile is compared with every window of a monitor
    _knots: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else float("nan")

    @property
    def std(self) -> float:
        if self.count < 2:
            return 0.0
        var = (self.sumsq - self.sum * self.sum / self.count) / (self.count - 1)
        if np.isfinite(var):
            return float(np.sqrt(max(var, 0.0)))
        return self.spread()

    def spread(self) -> float:
        """The standard deviation without squaring the values (which overflows near the largest float): exact
        from the kept sample, else that of the piecewise-uniform distribution of :meth:`knots`.

        >>> big = np.finfo(float).max
        >>> import pandas as pd
        >>> p = profile(pd.DataFrame({"x": np.r_[np.zeros(9), big]}))["x"]
        >>> p.sumsq, f"{p.std:.4g}"
        (inf, '5.685e+307')
        """
        if self.count < 2:
            return 0.0
        if self.sample is not None:
            top = float(np.max(np.abs(self.sample))) or 1.0
            return float(np.std(self.sample / top, ddof=1)) * top
        x, f = self.knots()
        top = float(np.max(np.abs(x))) or 1.0
        a, b, mass = x[:-1] / top, x[1:] / top, np.diff(f)
        mean, second = float(np.sum(mass * (a + b) / 2)), float(np.sum(mass * (a * a + a * b + b * b) / 3))
        return float(np.sqrt(max(second - mean * mean, 0.0))) * top

    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, F(x)): the piecewise-linear CDF implied by the histograms (mass spread evenly within a bin)."""
        if self._knots is None:
            x, f = self._compute_knots()
            x.flags.writeable = f.flags.writeable = False  # shared by every caller: nobody may change them
            self._knots = (x, f)
        return self._knots

    def _compute_knots(self) -> tuple[np.ndarray, np.ndarray]:
        total = self.counts.sum()
        if not total:
            return np.array([0.0]), np.array([1.0])
        if self.tails is not None:
            return self._tail_knots(total)
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

    def _tail_knots(self, total: int) -> tuple[np.ndarray, np.ndarray]:
        """Knots through the tail histograms: the reference's bins, then the tails' bins outward."""
        assert self.tails is not None
        import math

        e, width = self.edges, math.ldexp(base_width(self.edges), self.tails.scale)
        down = np.arange(max(self.tails.below, default=-1), -1, -1)  # farthest bin first
        up = np.arange(max(self.tails.above, default=-1) + 1)
        with np.errstate(over="ignore"):  # grid edges past the largest float stop there
            x = np.concatenate((e[0] - (down + 1) * width, e, e[-1] + (up + 1) * width))
        big = np.finfo(float).max
        np.clip(x, -big, big, out=x)
        mass = np.concatenate(([self.tails.below.get(int(j), 0) for j in down], self.counts[1:-1],
                               [self.tails.above.get(int(j), 0) for j in up]))
        if down.size:  # the outermost bins end at the extremes, not at their grid edge
            x[0] = min(max(x[0], self.min), x[1])
        if up.size:
            x[-1] = max(min(x[-1], self.max), x[-2])
        return x, np.concatenate(([0.0], np.cumsum(mass) / total))

    def cdf(self, points: np.ndarray, left: bool = False) -> np.ndarray:
        """F at ``points`` from :meth:`knots`, or its limit from the left (``left=True``).

        The two differ only where several knots share an x: a point mass, such as a constant column.
        """
        x, f = self.knots()
        # of knots with equal x, the last holds the mass up to and at x, the first the mass below x
        step = x[1:] != x[:-1]
        keep = np.concatenate(([True], step)) if left else np.concatenate((step, [True]))
        return np.interp(points, x[keep], f[keep], left=0.0, right=1.0)

    def merge(self, other: NumericProfile) -> NumericProfile:
        if self.edges.shape != other.edges.shape or not np.array_equal(self.edges, other.edges):
            raise InvalidInputError(field="profile", value="different bins",
                                    expected="profiles built against the same reference (profile(..., reference=ref))")
        sample = None
        if self.sample is not None and other.sample is not None and len(self.sample) + len(other.sample) <= SAMPLE_MAX:
            sample = np.concatenate([self.sample, other.sample])
        tails = None if self.tails is None or other.tails is None else self.tails.merge(other.tails)
        return NumericProfile(self.count + other.count, self.nulls + other.nulls, self.inf + other.inf,
                              self.sum + other.sum, self.sumsq + other.sumsq, _nanmin(self.min, other.min),
                              _nanmax(self.max, other.max), self.edges, self.counts + other.counts, sample,
                              (self.tail_sums[0] + other.tail_sums[0], self.tail_sums[1] + other.tail_sums[1]),
                              tails)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "numeric", "count": self.count, "nulls": self.nulls, "inf": self.inf, "sum": self.sum,
                "sumsq": self.sumsq, "min": _f(self.min), "max": _f(self.max), "edges": self.edges.tolist(),
                "counts": self.counts.tolist(), "sample": None if self.sample is None else self.sample.tolist(),
                "tail_sums": list(self.tail_sums), "tails": None if self.tails is None else self.tails.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericProfile:
        counts, edges = np.asarray(d["counts"], dtype=np.int64), np.asarray(d["edges"], dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or not np.isfinite(edges).all() or np.any(edges[1:] < edges[:-1]) \
                or counts.shape != (len(edges) + 1,):
            raise InvalidInputError(field="profile.edges", value=str(d["edges"])[:200],
                                    expected="at least 2 finite, non-decreasing edges and one more count than edges")
        return cls(int(d["count"]), int(d["nulls"]), int(d["inf"]), float(d["sum"]), float(d["sumsq"]),
                   _unf(d["min"]), _unf(d["max"]), edges, counts,
                   None if d.get("sample") is None else np.asarray(d["sample"], dtype=float),
                   tuple(float(v) for v in d.get("tail_sums", (0.0, 0.0))),  # type: ignore[arg-type]
                   None if d.get("tails") is None else Tails.from_dict(d["tails"], counts, edges))


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
    return numeric_profile_of(col.numeric, edges, bins)


def numeric_profile_of(values: np.ndarray, edges: np.ndarray | None = None, bins: int = BINS,
                       binned: np.ndarray | None = None) -> NumericProfile:
    """The profile of float64 ``values`` (missing as NaN): what ``numeric_profile`` gives for a column of them.

    ``binned``: ``bin_index`` of ``values`` on ``edges``, when it is known already (for the finite values; what
    it holds for the others does not count).
    """
    finite_mask = np.isfinite(values)
    all_finite = bool(finite_mask.all())
    finite = values if all_finite else values[finite_mask]
    nan = 0 if all_finite else int(np.isnan(values).sum())
    count = int(finite.size)
    lo, hi = (float(finite.min()), float(finite.max())) if count else (float("nan"), float("nan"))
    if edges is None:
        edges, binned = reference_edges(finite, bins, lo, hi), None  # bins of its own: nothing binned on them yet
    if binned is None:
        binned = bin_index(finite, edges)
    elif not all_finite:
        binned = binned[finite_mask]
    counts = np.bincount(binned, minlength=len(edges) + 1).astype(np.int64)
    with np.errstate(over="ignore", invalid="ignore"):  # values near the largest float: inf (or inf - inf) sums
        tail_sums = (float(finite[finite < edges[0]].sum()) if counts[0] else 0.0,
                     float(finite[finite > edges[-1]].sum()) if counts[-1] else 0.0)
        total, squares = float(finite.sum()), float(np.square(finite).sum())
    return NumericProfile(
        count=count, nulls=nan, inf=int(len(values) - count - nan), sum=total,
        sumsq=squares, min=lo, max=hi, edges=edges, counts=counts,
        sample=finite.copy() if count <= SAMPLE_MAX else None, tail_sums=tail_sums,
        tails=Tails.of(finite, edges) if counts[0] or counts[-1] else Tails(0, {}, {}))


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """0 below ``edges[0]``, i in 1..k for bin i (the last one closed), k+1 above ``edges[-1]``.

    Evenly spaced edges (the usual case) are binned arithmetically; others by binary search.
    """
    k = len(edges) - 1
    with np.errstate(over="ignore"):  # inf for edges at -/+ the largest float: binary search then
        width = (edges[-1] - edges[0]) / k if k else 0.0
    if k and 0 < width < np.inf and np.allclose(np.diff(edges), width, rtol=1e-9, atol=0):
        with np.errstate(over="ignore"):  # +/-inf for values past the largest float: clipped below
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
    if hi / 2 - lo / 2 <= bins / 2 and np.array_equal(sub, np.round(sub)):  # small integers: one bin each
        return np.arange(lo - 0.5, hi + 1.0)
    head = np.unique(sub[:2000])
    if head.size <= bins // 4:
        distinct = np.unique(sub)
        if distinct.size <= bins:
            mids = distinct[1:] / 2 + distinct[:-1] / 2  # halves first: no overflow near the largest float
            return np.concatenate(([distinct[0]], mids, [distinct[-1]]))
    k = max(1, int(0.001 * (sub.size - 1)))
    part = np.partition(sub, (k, sub.size - 1 - k))
    a, b = float(part[k]), float(part[sub.size - 1 - k])
    if not b > a:
        a, b = lo, hi
    with np.errstate(over="ignore"):
        finite_span = bool(np.isfinite(b - a))
    if finite_span:
        return np.linspace(a, b, bins + 1)
    t = np.linspace(0.0, 1.0, bins + 1)  # spans wider than the largest float: weigh the ends instead
    return a * (1.0 - t) + b * t


def categorical_profile(col: Col) -> CategoricalProfile:
    codes, uniques = col.factorize()
    valid = codes[codes >= 0]
    return categorical_profile_of(valid, [category_key(u) for u in uniques.tolist()], int(len(codes) - valid.size))


def categorical_profile_of(codes: np.ndarray, keys: list[Any], nulls: int) -> CategoricalProfile:
    """The profile of the present values given as ``codes`` into ``keys`` (numbered in the order they first
    appear, as ``Col.factorize`` numbers them), beside ``nulls`` missing ones."""
    counts = np.bincount(codes, minlength=len(keys))
    freq: dict[Any, int] = {}
    for key, c in zip(keys, counts.tolist(), strict=True):  # one entry per distinct value, not per row
        freq[key] = freq.get(key, 0) + c
    return CategoricalProfile(int(codes.size), nulls, _cap(freq))


def category_key(value: Any) -> Any:
    """A category as a profile keeps it: a plain Python value, or its text."""
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


def _histogram(distances: np.ndarray, width: float) -> dict[int, int]:
    """Counts of ``distances`` (all > 0) per bin ``floor(distance / width)``, non-empty bins only."""
    if not distances.size:
        return {}
    bins = np.minimum(distances / width, TAIL_BINS - 1)  # beyond only at the largest scale (inf included)
    counts = np.bincount(bins.astype(np.int64), minlength=TAIL_BINS)
    return {j: int(counts[j]) for j in np.flatnonzero(counts).tolist()}


def _shifted(bins: dict[int, int], shift: int) -> dict[int, int]:
    out: dict[int, int] = {}
    for j, c in bins.items():
        out[j >> shift] = out.get(j >> shift, 0) + c
    return out


def _summed(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    return {j: a.get(j, 0) + b.get(j, 0) for j in sorted({*a, *b})}


def _nanmin(a: float, b: float) -> float:
    return float(np.nanmin([a, b])) if not (np.isnan(a) and np.isnan(b)) else float("nan")


def _nanmax(a: float, b: float) -> float:
    return float(np.nanmax([a, b])) if not (np.isnan(a) and np.isnan(b)) else float("nan")


def _f(x: float) -> float | None:
    return None if x != x else x


def _unf(x: float | None) -> float:
    return float("nan") if x is None else float(x)
