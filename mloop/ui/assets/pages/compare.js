// Runs side by side, as many as selected: params and latest metrics in one table each (what differs marked, or
// only what differs on request), every metric overlaid run against run, parallel coordinates of the params
// against a chosen metric, and a scatter of any two columns. The URL (?runs=a,b,c) shares the comparison.

import { PALETTE, api, esc, h, link, num, plot, query, section, seg, setQuery, value } from "../lib.js";
import { metricCharts } from "./charts.js";

export async function render(main) {
  const q = query();
  const ids = (q.runs || "").split(",").map((id) => id.trim()).filter(Boolean);
  if (ids.length < 1) {
    main.append(h("h1", {}, "Compare runs"), h("p", { class: "muted" },
      "Select runs in an experiment's table and press Compare selected."));
    return;
  }
  const runs = await Promise.all(ids.map((id) => api(`/runs/${seg(id)}`)));
  const names = runs.map((r) => `${r.name} (${r.run_id.slice(0, 6)})`);
  main.append(h("h1", {}, `Compare ${runs.length} runs`), h("div", { class: "legend-runs" }, runs.map((r, i) =>
    h("span", {}, h("span", { class: "swatch", style: `background:${PALETTE[i % PALETTE.length]}` }),
      link(`/runs/${seg(r.run_id)}`, names[i])))));
  const state = { diffOnly: q.diff === "1" };
  const paramsBox = h("div");
  const drawParams = () => paramsBox.replaceChildren(sideBySide(runs, names, "params", state.diffOnly));
  drawParams();
  const toggle = h("label", {}, h("input", { type: "checkbox", name: "diff", checked: state.diffOnly,
    onchange: (event) => {
      state.diffOnly = event.target.checked;
      setQuery({ runs: ids.join(","), diff: state.diffOnly ? "1" : "" });
      drawParams();
    } }), " only what differs");
  main.append(h("div", { class: "cards" },
    section("Params", h("div", { class: "controls" }, toggle), paramsBox),
    section("Latest metrics", sideBySide(runs, names, "metrics", false))));
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const trained = keys.filter((k) => !k.startsWith("system/"));
  const charts = metricCharts(main, "Metrics, run against run", ids, trained, { names });
  main.append(h("div", { class: "cards" },
    section("Parallel coordinates", parallelBox(runs, names, trained)),
    section("Scatter", scatterBox(runs, names))));
  await charts;
}

function sideBySide(runs, names, kind, diffOnly) {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r[kind])))].sort();
  const differs = (key) => new Set(runs.map((r) => JSON.stringify(r[kind][key] ?? null))).size > 1;
  const shown = diffOnly ? keys.filter(differs) : keys;
  if (!shown.length) return h("p", { class: "muted" }, diffOnly ? "No differences." : "None logged.");
  return h("div", { class: "table-box" }, h("table", { class: `grid compare-${kind}` },
    h("thead", {}, h("tr", {}, h("th", {}, "key"), names.map((n) => h("th", {}, n)))),
    h("tbody", {}, shown.map((key) => h("tr", { class: differs(key) ? "differs" : "", dataset: { key } },
      h("th", {}, key), runs.map((r) => h("td", { class: typeof r[kind][key] === "number" ? "n" : "" },
        value(r[kind][key]))))))));
}

/** The columns a chart can use: every param and metric, numeric or not (text becomes categories). */
function columns(runs) {
  const params = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort().map((k) => `params.${k}`);
  const metrics = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort().map((k) => `metrics.${k}`);
  return [...params, ...metrics];
}

function read(run, column) {
  const dot = column.indexOf(".");
  const found = run[column.slice(0, dot)][column.slice(dot + 1)];
  return found === undefined ? null : found;
}

/** A column's values as numbers, with the labels to show: text values become category positions. */
function axis(runs, column) {
  const raw = runs.map((r) => read(r, column));
  if (raw.every((v) => v === null || typeof v === "number")) return { values: raw, labels: null };
  const categories = [...new Set(raw.filter((v) => v !== null).map(String))].sort();
  return { values: raw.map((v) => (v === null ? null : categories.indexOf(String(v)))), labels: categories };
}

function select(name, options, chosen, onchange) {
  return h("select", { name, onchange }, options.map((o) => h("option", { value: o, selected: o === chosen }, o)));
}

function parallelBox(runs, names, metrics) {
  const element = h("div", { class: "chart", id: "parallel" });
  // axes for the params at least two runs share (a param of one run says nothing across runs), when any
  const all = columns(runs).filter((c) => c.startsWith("params."));
  const shared = all.filter((c) => runs.filter((r) => read(r, c) !== null).length >= 2);
  const params = shared.length ? shared : all;
  if (!metrics.length || !params.length) return h("p", { class: "muted" }, "Needs params and a metric.");
  const draw = (metric) => parallel(element, runs, names, [...params, `metrics.${metric}`]);
  const chooser = select("metric", metrics, metrics[0], (event) => draw(event.target.value));
  setTimeout(() => draw(metrics[0])); // once the box is in the page: Plotly sizes a chart by its element
  return h("div", {}, h("div", { class: "controls" }, h("label", {}, "metric ", chooser)), element);
}

// Plotly's own parallel-coordinates trace draws with WebGL through generated code, which the page's policy
// (no eval) and machines without a GPU refuse; the same picture is one line per run over normalized axes.
// Runs are {params, metrics}; ``colors`` (one per run) replaces the palette, e.g. to shade by an objective.
export function parallel(element, runs, names, dims, { colors = null, showlegend = true } = {}) {
  const axes = dims.map((d) => ({ ...axis(runs, d), name: d }));
  const scaled = axes.map((a) => {
    const known = a.values.filter((v) => v !== null && Number.isFinite(v));
    const lo = Math.min(...known);
    const hi = Math.max(...known);
    return { ...a, lo, hi, at: (v) => (v === null || !Number.isFinite(v) ? null : hi > lo ? (v - lo) / (hi - lo) : 0.5) };
  });
  const x = dims.map((d) => esc(d.startsWith("params.") ? d.slice(7) : d.replace("metrics.", "metric ")));
  const label = (a, v) => (v === null ? "missing" : a.labels ? a.labels[v] : num(v));
  const traces = runs.map((run, i) => ({
    type: "scatter", mode: "lines+markers", name: esc(names[i]), x, y: scaled.map((a) => a.at(a.values[i])),
    text: scaled.map((a) => esc(label(a, a.values[i]))), hovertemplate: "%{x}: %{text}<extra>%{fullData.name}</extra>",
    line: { color: colors ? colors[i] : PALETTE[i % PALETTE.length], width: 2 }, connectgaps: true, // a missing value skips its axis
  }));
  const ends = scaled.flatMap((a, i) => [
    { x: x[i], y: 1.06, text: esc(a.labels ? a.labels[a.labels.length - 1] : label(a, a.hi)), showarrow: false },
    { x: x[i], y: -0.06, text: esc(a.labels ? a.labels[0] : label(a, a.lo)), showarrow: false }]);
  return plot(element, traces, { height: 360, annotations: ends, showlegend, margin: { l: 40, r: 40, t: 50, b: 60 },
    yaxis: { showticklabels: false, range: [-0.12, 1.12], zeroline: false }, xaxis: { type: "category" } })
    .then(() => { element.dataset.points = String(runs.length); });
}

function scatterBox(runs, names) {
  const all = columns(runs);
  if (all.length < 2) return h("p", { class: "muted" }, "Needs two columns.");
  const firstMetric = all.find((c) => c.startsWith("metrics.")) || all[1];
  const choice = { x: all.find((c) => c !== firstMetric && c.startsWith("params.")) || all[0], y: firstMetric };
  const element = h("div", { class: "chart", id: "scatter" });
  const draw = () => {
    const [x, y] = [axis(runs, choice.x), axis(runs, choice.y)];
    const tick = (a) => (a.labels ? { tickvals: a.labels.map((_, i) => i), ticktext: a.labels.map(esc) } : {});
    return plot(element, [{ type: "scatter", mode: "markers+text", x: x.values, y: y.values, text: names.map(esc),
      textposition: "top center", cliponaxis: false, marker: { size: 11, color: names.map((_, i) => PALETTE[i % PALETTE.length]) } }],
    { xaxis: { title: { text: esc(choice.x) }, zeroline: false, ...tick(x) },
      yaxis: { title: { text: esc(choice.y) }, zeroline: false, ...tick(y) },
      showlegend: false, margin: { l: 64, r: 48, t: 40, b: 56 } })
      .then(() => { element.dataset.points = `${choice.x} ${choice.y}`; });
  };
  const pick = (which) => select(which, all, choice[which], (event) => { choice[which] = event.target.value; draw(); });
  setTimeout(draw);
  return h("div", {}, h("div", { class: "controls" }, h("label", {}, "x ", pick("x")), h("label", {}, "y ", pick("y"))),
    element);
}
