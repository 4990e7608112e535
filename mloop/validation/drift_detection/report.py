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

__all__ = ["PLOTLY_FILE", "figure_data", "plotly_js", "render_html"]

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
    """Two overlaid traces (reference, current) of shares per bin or category, from the profiles."""
    ref, cur = c.reference, c.current
    if ref is None or cur is None:
        return []
    if isinstance(ref, NumericProfile):
        x, p, q, widths = _numeric_bins(ref, cur)
        kind = {"type": "bar", "x": x, "width": widths}
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


def _numeric_bins(ref: NumericProfile, cur: NumericProfile) -> tuple[list[float], np.ndarray, np.ndarray,
                                                                     list[float]]:
    xr, fr = ref.knots()
    xc, fc = cur.knots()
    # show the central 99% of both, so one far outlier does not squash the picture
    lo = min(np.interp(0.005, fr, xr), np.interp(0.005, fc, xc)) if cur.count else np.interp(0.005, fr, xr)
    hi = max(np.interp(0.995, fr, xr), np.interp(0.995, fc, xc)) if cur.count else np.interp(0.995, fr, xr)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, DISPLAY_BINS + 1)
    if len(ref.edges) - 1 <= 1.5 * DISPLAY_BINS:  # few distinct values (hours, counts): one bar per value
        edges = ref.edges
    p = np.diff(np.interp(edges, xr, fr, left=0.0, right=1.0))
    q = np.diff(np.interp(edges, xc, fc, left=0.0, right=1.0)) if cur.count else np.zeros(len(edges) - 1)
    centers = ((edges[1:] + edges[:-1]) / 2).tolist()
    widths = [float(f"{w:.6g}") for w in np.diff(edges) * 0.95]
    return [float(f"{v:.6g}") for v in centers], p, q, widths


def _cell(x: float | None) -> str:
    if x is None or x != x:
        return "&ndash;"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


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
                    f"<td>{c.n_reference:,}</td><td>{c.n_current:,}</td></tr>")
    charts, scripts = [], []
    for i, c in enumerate(ordered):
        layout = {"title": {"text": f"{c.column} ({c.method} {_cell(c.statistic)}, effect {_cell(c.effect_size)})"},
                  "barmode": "overlay", "height": 300, "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
                  "yaxis": {"title": {"text": "% of rows"}}, "legend": {"orientation": "h"}}
        charts.append(f"<div class='chart' id='col{i}'></div>")
        scripts.append(f"Plotly.newPlot('col{i}',{json.dumps(figure_data(c))},{json.dumps(layout)},"
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
.chart{{max-width:900px;margin-top:16px}}
</style>
{plotly}</head><body>
<h1>{title}</h1>
<p class="{cls}">{verdict}</p><p>{summary}</p>
<table><thead><tr><th>column</th><th>role</th><th>type</th><th>method</th><th>statistic</th><th>p-value</th>
<th>effect size</th><th>threshold</th><th>verdict</th><th>reference n</th><th>current n</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p>Effect size: Wasserstein distance / reference std (numeric), Jensen-Shannon distance (categorical).</p>
{charts}
<script>
{scripts}
</script>
<script type="application/json" id="mloop-drift-result">{result}</script>
</body></html>
"""
