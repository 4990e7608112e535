"""The analysis report: one self-contained HTML file (Plotly.js inlined from the installed package, no CDN).

A slice whose whole interval lies on the wrong side of the overall value is marked "worse"; one whose interval
is merely wide (a tiny slice) is not, however low its point estimate.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from mloop.analysis.result import HIGHER_IS_BETTER
from mloop.validation.drift_detection.report import plotly_js

if TYPE_CHECKING:
    from mloop.analysis.result import Analysis

__all__ = ["render_html"]


def _cell(x: Any) -> str:
    if x is None:
        return "&ndash;"
    return f"{x:.4g}" if isinstance(x, float) else html.escape(str(x))


def _interval(m: dict[str, Any]) -> str:
    return f"{_cell(m['value'])} <small>[{_cell(m['low'])}, {_cell(m['high'])}]</small>"


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' of the data can end it or open another."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _label(value: Any) -> str:
    """Text for a chart: Plotly reads a few HTML tags in labels, so data is escaped there too."""
    return html.escape(str(value))


def _worse(name: str, m: dict[str, Any], overall: dict[str, Any]) -> bool:
    ref = overall.get(name, {}).get("value")
    if ref is None or m["low"] is None or m["high"] is None:
        return False
    return m["high"] < ref if HIGHER_IS_BETTER[name] else m["low"] > ref


def _slice_rows(a: Analysis) -> str:
    names = list(a.overall["metrics"])
    head = "<tr><th>slice</th><th>value</th><th>count</th>" + "".join(f"<th>{n}</th>" for n in names) + "</tr>"
    rows = [head, "<tr class='overall'><td>overall</td><td></td><td>" + f"{a.overall['count']:,}</td>"
            + "".join(f"<td>{_interval(a.overall['metrics'][n])}</td>" for n in names) + "</tr>"]
    for s in a.slices:
        cells = []
        for n in names:
            m = s["metrics"][n]
            flag = " class='bad'" if _worse(n, m, a.overall["metrics"]) else ""
            cells.append(f"<td{flag}>{_interval(m)}</td>")
        rows.append(f"<tr><td>{html.escape(s['slice'])}</td><td>{html.escape(s['value'])}</td>"
                    f"<td>{s['count']:,}</td>{''.join(cells)}</tr>")
    return "\n".join(rows)


def _fairness_rows(a: Analysis) -> str:
    parts = []
    for feature, r in a.fairness.items():
        parts.append(f"<h3>{html.escape(feature)} (positive class {html.escape(str(r['positive']))})</h3><p>"
                     + ", ".join(f"{k.replace('_', ' ')}: <b>{_cell(r[k])}</b>" for k in
                                 ("demographic_parity_difference", "demographic_parity_ratio",
                                  "equalized_odds_difference", "equalized_odds_ratio")) + "</p>")
        keys = [k for k in r["groups"][0]] if r["groups"] else []
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{_cell(g[k])}</td>" for k in keys) + "</tr>"
                               for g in r["groups"]) + "</table>")
    return "\n".join(parts)


def _charts(a: Analysis) -> list[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    charts = []
    metric = a.primary_metric
    for name in dict.fromkeys(s["slice"] for s in a.slices):
        rows = [s for s in a.slices if s["slice"] == name]
        m = [r["metrics"][metric] for r in rows]
        trace = {"type": "bar", "x": [_label(r["value"]) for r in rows], "y": [x["value"] for x in m],
                 "error_y": {"type": "data", "symmetric": False,
                             "array": [None if x["high"] is None else x["high"] - x["value"] for x in m],
                             "arrayminus": [None if x["low"] is None else x["value"] - x["low"] for x in m]},
                 "text": [f"n={r['count']}" for r in rows]}
        overall = a.overall["metrics"][metric]["value"]
        layout = {"title": {"text": f"{metric} by {_label(name)} (95% intervals)"}, "height": 320,
                  "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": overall, "y1": overall,
                              "line": {"dash": "dot"}}]}
        charts.append((f"slice-{len(charts)}", [trace], layout))
    if a.calibration:
        c = a.calibration
        charts.append(("calibration", [
            {"type": "scatter", "mode": "lines+markers", "name": "observed", "x": [b["mean_predicted"] for b in c],
             "y": [b["observed"] for b in c], "text": [f"n={b['count']}" for b in c]},
            {"type": "scatter", "mode": "lines", "name": "perfect", "x": [0, 1], "y": [0, 1],
             "line": {"dash": "dot"}}], {"title": {"text": "Calibration (reliability)"}, "height": 360}))
    if a.confusion:
        labels = [_label(x) for x in a.confusion["labels"]]
        charts.append(("confusion", [{"type": "heatmap", "z": a.confusion["matrix"], "x": labels, "y": labels,
                                      "colorscale": "Blues"}],
                       {"title": {"text": "Confusion matrix"}, "height": 360,
                        "xaxis": {"title": {"text": "predicted"}}, "yaxis": {"title": {"text": "true"}}}))
    return charts


def render_html(a: Analysis, title: str = "Model analysis") -> str:
    charts = _charts(a)
    divs = "\n".join(f"<div class='chart' id='{cid}'></div>" for cid, _, _ in charts)
    scripts = "\n".join(f"Plotly.newPlot('{cid}',{_script_json(data)},{_script_json(layout)},"
                        "{displayModeBar:false,responsive:true});" for cid, data, layout in charts)
    methods = "; ".join(f"{k}: {v}" for k, v in a.ci_methods.items())
    return _PAGE.format(title=html.escape(title), task=a.task, label=html.escape(a.label), n=a.n_rows,
                        rows=_slice_rows(a), fairness=_fairness_rows(a) or "<p>No sensitive features declared.</p>",
                        methods=html.escape(methods), notes=html.escape("; ".join(a.notes)), charts=divs,
                        plotly=f"<script>{plotly_js()}</script>", scripts=scripts,
                        result=html.escape(a.to_json()))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;font-size:14px}}
th,td{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}} th{{background:#f4f4f4}}
.bad{{color:#b00020;font-weight:600}} .overall{{background:#f9f9f9;font-weight:600}} .chart{{max-width:900px}}
</style>
{plotly}</head><body>
<h1>{title}</h1>
<p>{task} of <b>{label}</b> on {n:,} rows. Intervals are 95% ({methods}). Red: the whole interval is worse
than overall. {notes}</p>
<h2>Metrics by slice</h2>
<table>
{rows}
</table>
<h2>Fairness</h2>
{fairness}
<h2>Charts</h2>
{charts}
<script>
{scripts}
</script>
<script type="application/json" id="mloop-analysis-result">{result}</script>
</body></html>
"""
