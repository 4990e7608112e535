"""Drift methods: a registry of statistical tests and distances, each computed from two column profiles.

A method gets a ``Pair`` (reference and current profiles of one column) and returns the statistic and,
for tests, the p-value. Register your own with ``register_method``:

>>> import numpy as np
>>> @register_method("mean_shift", kinds=("numeric",), threshold=0.5, description="|mean diff| / std")
... def _mean_shift(pair: Pair) -> tuple[float, None]:
...     return abs(pair.cur.mean - pair.ref.mean) / (pair.ref.std or 1.0), None
>>> "mean_shift" in METHODS
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mloop.errors import InvalidInputError
from mloop.validation.profile import CategoricalProfile, NumericProfile

__all__ = ["METHODS", "DriftMethod", "Pair", "default_method", "effect_size", "effect_size_note", "register_method",
           "SMALL_SAMPLE", "wasserstein_scale"]

SMALL_SAMPLE = 1000  # at or below this many values per side: statistical tests; above: distances
PSI_GROUPS = 10


@dataclass(frozen=True, slots=True)
class Pair:
    """What a method measures: one column's reference and current profiles."""

    column: str
    ref: Any  # NumericProfile | CategoricalProfile
    cur: Any


@dataclass(frozen=True, slots=True)
class DriftMethod:
    name: str
    kinds: tuple[str, ...]
    fn: Callable[[Pair], tuple[float, float | None]]
    threshold: float
    test: bool  # True: drifted when p < threshold; False: drifted when statistic >= threshold
    description: str

    def drifted(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        if self.test:
            return p_value is not None and p_value < threshold
        return bool(statistic >= threshold)


METHODS: dict[str, DriftMethod] = {}


def register_method(name: str, kinds: tuple[str, ...], threshold: float, test: bool = False,
                    description: str = "") -> Callable[[Callable[[Pair], tuple[float, float | None]]], Any]:
    """Decorator: make ``fn(pair) -> (statistic, p_value or None)`` selectable as ``methods={col: name}``."""
    def wrap(fn: Callable[[Pair], tuple[float, float | None]]) -> Callable[[Pair], tuple[float, float | None]]:
        METHODS[name] = DriftMethod(name, tuple(kinds), fn, float(threshold), test, description or fn.__doc__ or "")
        return fn
    return wrap


def get_method(name: str, kind: str, column: str) -> DriftMethod:
    method = METHODS.get(name)
    if method is None:
        raise InvalidInputError(field=f"methods.{column}", value=name, expected=f"one of {sorted(METHODS)}")
    if kind not in method.kinds:
        raise InvalidInputError(field=f"methods.{column}", value=name,
                                expected=f"a method for {kind} columns: "
                                         f"{sorted(m.name for m in METHODS.values() if kind in m.kinds)}")
    return method


def default_method(kind: str, n_reference: int, n_current: int, small: int = SMALL_SAMPLE) -> str:
    """Tests on small samples, distances on large ones (where any p-value test flags a negligible shift)."""
    few = min(n_reference, n_current) <= small
    if kind == "numeric":
        return "ks" if few else "wasserstein"
    return "chisquare" if few else "jensenshannon"


# ---------------------------------------------------------------------- numeric helpers
def cdfs(ref: NumericProfile, cur: NumericProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both piecewise-linear CDFs on the union of their knots."""
    grid = np.union1d(ref.knots()[0], cur.knots()[0])
    return grid, ref.cdf(grid), cur.cdf(grid)


def cdf_gaps(ref: NumericProfile, cur: NumericProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid, F - G at each grid point, F - G just left of it): both differ where a side has a point mass."""
    grid = np.union1d(ref.knots()[0], cur.knots()[0])
    return (grid, ref.cdf(grid) - cur.cdf(grid),
            ref.cdf(grid, left=True) - cur.cdf(grid, left=True))


def _abs_area(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Exact integral of |d| where d is linear from ``a[i]`` at ``x[i]`` to ``b[i]`` at ``x[i + 1]``."""
    w = np.diff(x / 2)  # halves: knots at -/+ the largest float are 2 largest floats apart
    same = a * b >= 0
    denom = np.abs(a) + np.abs(b)
    crossing = np.divide(a * a + b * b, 2 * denom, out=np.zeros_like(denom), where=denom > 0)
    return float(np.sum(w * np.where(same, (np.abs(a) + np.abs(b)) / 2, crossing))) * 2


def wasserstein(ref: NumericProfile, cur: NumericProfile) -> float:
    """Earth mover's distance W1: exact from kept samples, else from the binned CDFs."""
    if ref.sample is not None and cur.sample is not None and ref.count and cur.count:
        from scipy.stats import wasserstein_distance

        # on halves: values at -/+ the largest float are 2 largest floats apart (overflow in scipy's steps)
        return float(wasserstein_distance(ref.sample / 2, cur.sample / 2)) * 2
    grid, right, left = cdf_gaps(ref, cur)
    return _abs_area(grid, right[:-1], left[1:])


def normalized_wasserstein(ref: NumericProfile, cur: NumericProfile) -> float:
    """W1 / the reference's standard deviation; finite always (see :func:`wasserstein_scale`)."""
    if not ref.count or not cur.count:
        return float("nan")
    distance = wasserstein(ref, cur)
    scale, _ = wasserstein_scale(ref, cur)
    return 0.0 if distance == 0 else distance / scale if scale > 0 else distance


def wasserstein_scale(ref: NumericProfile, cur: NumericProfile) -> tuple[float, str]:
    """What the Wasserstein distance is divided by, and why when it is not the reference's standard deviation.

    A reference with a single value has no spread to measure a shift against (dividing by 0 gives infinity):
    then the standard deviation of both samples together is used, which is 0 only when both hold that same
    single value (and the distance is 0 too). Should that still be 0, the distance is left as it is.

    >>> import pandas as pd
    >>> from mloop.validation import profile
    >>> ref, cur = profile(pd.DataFrame({"x": [5.0] * 50})), profile(pd.DataFrame({"x": [5.0, 7.0] * 25}))
    >>> round(wasserstein_scale(ref["x"], cur["x"])[0], 4)  # the std of 75 fives and 25 sevens
    0.8704
    """
    if ref.count > 1 and ref.max > ref.min and ref.std > 0:
        return ref.std, ""
    n = ref.count + cur.count
    total, squares = ref.sum + cur.sum, ref.sumsq + cur.sumsq
    pooled = float(np.sqrt(max((squares - total * total / n) / (n - 1), 0.0))) if n > 1 else 0.0
    if not np.isfinite(pooled):  # values near the largest float: their squares overflow
        pooled = max(ref.spread(), cur.spread())
    if cur.min == cur.max == ref.min:  # the same single value on both sides: rounding must not make a spread
        pooled = 0.0
    value = f"{ref.min:.6g}"
    if pooled > 0:
        return pooled, (f"the reference has a single value ({value}), so the Wasserstein distance is divided by "
                        f"the standard deviation of both samples together ({pooled:.4g}) instead of its own (0)")
    return 0.0, f"the reference and current data hold the same single value ({value})"


@register_method("ks", kinds=("numeric",), threshold=0.05, test=True,
                 description="two-sample Kolmogorov-Smirnov test (exact on small samples, binned CDFs otherwise)")
def _ks(pair: Pair) -> tuple[float, float | None]:
    ref, cur = pair.ref, pair.cur
    if not ref.count or not cur.count:
        return float("nan"), None
    from scipy import stats

    if ref.sample is not None and cur.sample is not None:
        res = stats.ks_2samp(ref.sample, cur.sample)
        return float(res.statistic), float(res.pvalue)
    _, right, left = cdf_gaps(ref, cur)
    d = float(max(np.max(np.abs(right)), np.max(np.abs(left))))
    n, m = ref.count, cur.count
    return d, float(stats.kstwo.sf(d, max(1, round(n * m / (n + m)))))


@register_method("wasserstein", kinds=("numeric",), threshold=0.1,
                 description="Wasserstein (earth mover's) distance divided by the reference's standard deviation")
def _wasserstein(pair: Pair) -> tuple[float, float | None]:
    return normalized_wasserstein(pair.ref, pair.cur), None


@register_method("psi", kinds=("numeric", "categorical"), threshold=0.1,
                 description="population stability index over 10 reference-quantile groups (or the categories)")
def _psi(pair: Pair) -> tuple[float, float | None]:
    ref, cur = pair.ref, pair.cur
    if isinstance(ref, NumericProfile):
        if not ref.count or not cur.count:
            return float("nan"), None
        xr, fr = ref.knots()
        bounds = np.interp(np.linspace(0, 1, PSI_GROUPS + 1)[1:-1], fr, xr)
        p = np.diff(np.concatenate(([0.0], ref.cdf(bounds), [1.0])))
        q = np.diff(np.concatenate(([0.0], cur.cdf(bounds), [1.0])))
    else:
        p, q = category_shares(ref, cur)
    p, q = np.clip(p, 1e-4, None), np.clip(q, 1e-4, None)
    return float(np.sum((q - p) * np.log(q / p))), None


# ---------------------------------------------------------------------- categorical
def category_counts(ref: CategoricalProfile, cur: CategoricalProfile) -> tuple[list[Any], np.ndarray, np.ndarray]:
    keys = list(ref.freq) + [k for k in cur.freq if k not in ref.freq]
    r = np.fromiter((ref.freq.get(k, 0) for k in keys), float, len(keys))
    c = np.fromiter((cur.freq.get(k, 0) for k in keys), float, len(keys))
    return keys, r, c


def category_shares(ref: CategoricalProfile, cur: CategoricalProfile) -> tuple[np.ndarray, np.ndarray]:
    _, r, c = category_counts(ref, cur)
    return r / max(r.sum(), 1), c / max(c.sum(), 1)


def jensen_shannon(ref: CategoricalProfile, cur: CategoricalProfile) -> float:
    """Jensen-Shannon distance in base 2 (0 same, 1 disjoint); equals scipy's ``jensenshannon(p, q, base=2)``."""
    if not ref.count or not cur.count:
        return float("nan")
    p, q = category_shares(ref, cur)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


@register_method("chisquare", kinds=("categorical",), threshold=0.05, test=True,
                 description="chi-square test of homogeneity on the 2 x k table of category counts")
def _chisquare(pair: Pair) -> tuple[float, float | None]:
    _, r, c = category_counts(pair.ref, pair.cur)
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    if len(r) < 2 or not r.sum() or not c.sum():
        return 0.0, 1.0
    from scipy import stats

    observed = np.vstack([r, c])
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, len(r) - 1))


@register_method("jensenshannon", kinds=("categorical",), threshold=0.1,
                 description="Jensen-Shannon distance (base 2) between the category shares")
def _jensenshannon(pair: Pair) -> tuple[float, float | None]:
    return jensen_shannon(pair.ref, pair.cur), None


def effect_size(ref: Any, cur: Any) -> float:
    """One comparable size per column whatever the method: normalized Wasserstein or Jensen-Shannon distance.

    Finite whenever both sides have values (NaN when one has none): see :func:`wasserstein_scale` for a
    reference with a single value.
    """
    if isinstance(ref, NumericProfile):
        return normalized_wasserstein(ref, cur)
    return jensen_shannon(ref, cur)


def effect_size_note(ref: Any, cur: Any) -> str:
    """Why a numeric column's effect size is not divided by the reference's standard deviation ("" when it is)."""
    if not isinstance(ref, NumericProfile) or not ref.count or not cur.count:
        return ""
    return wasserstein_scale(ref, cur)[1]
