"""The drift report: one HTML file drawn from profiles only, so its size does not grow with rows.

Charts use the Plotly.js bundle of the installed ``plotly`` package (a dependency), never a CDN: a report
opens on a machine without internet. It is inlined by default (about 5 MB), or written once beside the
report as ``plotly.min.js``.
"""

from __future__ import annotations

import html
import json
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from mloop.validation.drift_detection.methods import category_counts
from mloop.validation.profile import NumericProfile

if TYPE_CHECKING:
    from mloop.validation.drift_detection.compute import ColumnDrift, DriftResult

__all__ = ["PLOTLY_FILE", "figure_data", "numeric_bins", "plotly_js", "render_html"]

DISPLAY_BINS = 40
TOP_CATEGORIES = 20
REF_COLOR, CUR_COLOR = "#4c78a8", "#f58518"


PLOTLY_FILE = "plotly.min.js"  # the name a report that is not self-contained loads, from its own folder


@cache
def plotly_js() -> str:
    """The Plotly.js bundle that ships with the installed ``plotly`` package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def figure_data(c: ColumnDrift) -> list[dict[str, Any]]:
    """Two overlaid traces (reference, current) of shares per bin or category, from the profiles.

    Numeric bins cover both samples (their central 99%), so current values outside the reference's range
    are drawn where they are; each bar's ``customdata`` is its bin ``[start, end]``.
    """
    ref, cur = c.reference, c.current
    if ref is None or cur is None:
        return []
    if isinstance(ref, NumericProfile):
        edges, p, q = numeric_bins(ref, cur)
        bins = [[_short(a), _short(b)] for a, b in zip(edges[:-1], edges[1:], strict=True)]
        kind = {"type": "bar", "x": [_short(v) for v in (edges[1:] + edges[:-1]) / 2],
                "width": [_short(w) for w in np.diff(edges) * 0.95], "customdata": bins,
                "hovertemplate": "%{customdata[0]} to %{customdata[1]}: %{y}%"}
    else:
        keys, r, k = category_counts(ref, cur)
        p, q = r / max(r.sum(), 1), k / max(k.sum(), 1)
        order = np.argsort(-np.maximum(p, q))[:TOP_CATEGORIES]
        x = [str(keys[i]) for i in order]
        p, q = p[order], q[order]
        kind = {"type": "bar", "x": x}
    return [{**kind, "y": np.round(p * 100, 3).tolist(), "name": "reference", "marker": {"color": REF_COLOR},
             "opacity": 0.6},
            {**kind, "y": np.round(q * 100, 3).tolist(), "name": "current", "marker": {"color": CUR_COLOR},
             "opacity": 0.6}]


def numeric_bins(ref: NumericProfile, cur: NumericProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Display bin edges over both samples' central 99%, and each side's share of its values per bin.

    A reference with few distinct values keeps one bar per value (its own bins), extended by bins of the same
    width when the current data reaches beyond them; otherwise ``DISPLAY_BINS`` even bins.
    """
    sides = [side for side in (ref, cur) if side.count]
    if not sides:
        return np.array([0.0, 1.0]), np.zeros(1), np.zeros(1)
    lo = min(_quantile(side, 0.005) for side in sides)
    hi = max(_quantile(side, 0.995) for side in sides)
    reach = np.finfo(float).max / 4  # sentinels near the largest float: bar widths and centres must not overflow
    lo, hi = min(max(lo, -reach), reach), max(min(hi, reach), -reach)
    edges = _value_bins(ref, lo, hi)
    if edges is None:
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, DISPLAY_BINS + 1)
    return edges, _shares(ref, edges), _shares(cur, edges)


def _shares(side: NumericProfile, edges: np.ndarray) -> np.ndarray:
    """Each bin's share of the side's values; the first bin closed on the left (a point mass at ``edges[0]``)."""
    if not side.count:
        return np.zeros(len(edges) - 1)
    return np.diff(np.concatenate((side.cdf(edges[:1], left=True), side.cdf(edges[1:]))))


def _value_bins(ref: NumericProfile, lo: float, hi: float) -> np.ndarray | None:
    """The reference's one-per-value bins, stretched with bins of their width to reach [lo, hi]; None when
    the reference has many bins, or a single value (no width), or the stretch would need too many bars."""
    edges = ref.edges
    limit = int(1.5 * DISPLAY_BINS)
    if len(edges) - 1 > limit or not edges[-1] > edges[0]:
        return None
    step = float(np.median(np.diff(edges)))
    below = int(np.ceil((edges[0] - lo) / step)) if lo < edges[0] else 0
    above = int(np.ceil((hi - edges[-1]) / step)) if hi > edges[-1] else 0
    if len(edges) - 1 + below + above > limit:
        return None
    return np.concatenate((edges[0] - step * np.arange(below, 0, -1), edges,
                           edges[-1] + step * np.arange(1, above + 1)))


def _quantile(side: NumericProfile, share: float) -> float:
    x, f = side.knots()
    return float(np.interp(share, f, x))


def _short(v: float) -> float:
    return float(f"{v:.6g}")


def _cell(x: float | None) -> str:
    if x is None or x != x:
        return "&ndash;"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element: a column name or category such as
    ``</script><script>...`` cannot end the element, because ``<``, ``>`` and ``&`` are written as escapes."""
    text = json.dumps(value)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_html(result: DriftResult, title: str = "Data drift", self_contained: bool = True) -> str:
    ordered = result.sorted()
    verdict = ("Dataset drift detected" if result.dataset_drift else
               "Some columns drifted" if result.any_drift else "No drift detected")
    rows = []
    for i, c in enumerate(ordered):
        badge = '<span class="bad">drifted</span>' if c.drifted else '<span class="ok">stable</span>'
        rows.append(f"<tr><td><a href='#col{i}'>{html.escape(c.column)}</a></td><td>{c.role}</td><td>{c.kind}</td>"
                    f"<td>{c.method}</td><td>{_cell(c.statistic)}</td><td>{_cell(c.p_value)}</td>"
                    f"<td>{_cell(c.effect_size)}</td><td>{c.threshold:g}</td><td>{badge}</td>"
                    f"<td>{c.n_reference:,}</td><td>{c.n_current:,}</td><td>{html.escape(c.note)}</td></tr>")
    charts, scripts = [], []
    for i, c in enumerate(ordered):
        layout = {"title": {"text": f"{c.column} ({c.method} {_cell(c.statistic)}, effect {_cell(c.effect_size)})"},
                  "barmode": "overlay", "height": 300, "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
                  "yaxis": {"title": {"text": "% of rows"}}, "legend": {"orientation": "h"}}
        charts.append(f"<div class='chart' id='col{i}'></div>")
        if c.note:
            charts.append(f"<p class='note'>{html.escape(c.column)}: {html.escape(c.note)}</p>")
        scripts.append(f"Plotly.newPlot('col{i}',{script_json(figure_data(c))},{script_json(layout)},"
                       "{displayModeBar:false,responsive:true});")
    plotly = f"<script>{plotly_js()}</script>" if self_contained else f'<script src="{PLOTLY_FILE}"></script>'
    return _PAGE.format(
        title=html.escape(title), verdict=verdict, cls="bad" if result.any_drift else "ok",
        summary=(f"{len(result.drifted_columns)} of {len(result.columns)} columns drifted "
                 f"({result.drift_share:.0%}; dataset threshold {result.share_threshold:.0%}). "
                 f"Reference {result.n_reference:,} rows, current {result.n_current:,} rows."),
        rows="\n".join(rows), charts="\n".join(charts), plotly=plotly, scripts="\n".join(scripts),
        result=html.escape(json.dumps(result.to_dict())))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;font-size:14px}}
th,td{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}} th{{background:#f4f4f4}}
.bad{{color:#b00020;font-weight:600}} .ok{{color:#1b7f3b;font-weight:600}}
.chart{{max-width:900px;margin-top:16px}} .note{{color:#555;font-size:13px;max-width:900px}}
</style>
{plotly}</head><body>
<h1>{title}</h1>
<p class="{cls}">{verdict}</p><p>{summary}</p>
<table><thead><tr><th>column</th><th>role</th><th>type</th><th>method</th><th>statistic</th><th>p-value</th>
<th>effect size</th><th>threshold</th><th>verdict</th><th>reference n</th><th>current n</th><th>note</th></tr>
</thead>
<tbody>
{rows}
</tbody></table>
<p>Effect size: Wasserstein distance / reference std (numeric; when the reference holds a single value, / the std
of both samples together, as its note says), Jensen-Shannon distance (categorical).</p>
{charts}
<script>
{scripts}
</script>
<script type="application/json" id="mloop-drift-result">{result}</script>
</body></html>
"""
