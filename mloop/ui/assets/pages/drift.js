// The drift heat map of a monitor: one row per input (the worst first), one column per window, the colour the
// drift effect against the training profile. Clicking a cell lays that window's distribution of that input over
// the training one. Rolled up (hourly, daily), a cell opens the worst window inside it.

import { api, errorBox, esc, h, num, plot, section, seg } from "../lib.js";
import { rowsOf } from "./monitoring.js";

const MAX_INPUTS = 60;
const MAX_CATEGORIES = 30;
const STEP = { "1h": 3600e3, "1d": 86400e3 };

/** Append the heat map's section for monitor ``name`` to ``main``; resolves once drawn. */
export async function driftMap(main, name, every) {
  const series = await api(`/monitors/${seg(name)}/series?metric=drift_effect${every ? `&every=${every}` : ""}`);
  const cells = worstPerCell(rowsOf(series));
  const detail = h("div", { class: "drift-detail" },
    h("p", { class: "muted" }, "Click a cell to compare that window with the training data."));
  const element = h("div", { class: "chart heatmap", dataset: { key: "drift" } });
  const box = section("Drift per input and window (effect size against training; worst inputs first)",
    element, detail);
  main.append(box);
  if (!cells.size) {
    element.replaceChildren(h("p", { class: "muted" }, "No drift measured: the version has no training profile, "
      + "or no window was computed yet."));
    return;
  }
  const starts = [...new Set([...cells.values()].map((c) => c.start))].sort((a, b) => a - b);
  const columns = [...new Set([...cells.values()].map((c) => c.column))];
  const worst = (column) => Math.max(...starts.map((s) => cells.get(`${s}|${column}`)?.value ?? -Infinity));
  columns.sort((a, b) => worst(b) - worst(a) || a.localeCompare(b));
  const shown = columns.slice(0, MAX_INPUTS);
  element.dataset.order = JSON.stringify(shown);
  const z = shown.map((column) => starts.map((s) => cells.get(`${s}|${column}`)?.value ?? null));
  await plot(element, [{ type: "heatmap", x: starts.map((s) => new Date(s)), y: shown.map(esc), z,
    colorscale: "YlOrRd", reversescale: true, zmin: 0, hoverongaps: false, colorbar: { title: { text: "effect" } },
    hovertemplate: "%{y}<br>%{x}<br>effect %{z:.3f}<extra></extra>" }],
  { height: Math.max(220, 60 + 26 * shown.length), margin: { l: 120, r: 16, t: 16, b: 40 },
    yaxis: { autorange: "reversed", type: "category" } });
  if (element.on) {
    element.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (!point) return;
      const [row, col] = point.pointNumber;
      const cell = cells.get(`${starts[col]}|${shown[row]}`);
      if (cell) openWindow(detail, name, every, cell);
    });
  }
}

/** Per (window, input): the largest effect over versions and roles, remembering which one it was. */
function worstPerCell(rows) {
  const cells = new Map();
  for (const row of rows) {
    if (row.value === null || typeof row.value !== "number") continue;
    const key = `${row.start}|${row.column}`;
    const known = cells.get(key);
    if (!known || row.value > known.value) cells.set(key, row);
  }
  return cells;
}

async function openWindow(detail, name, every, cell) {
  detail.replaceChildren(h("p", { class: "muted" }, "Loading..."));
  detail.dataset.state = "loading";
  try {
    let chosen = cell;
    if (every) { // a rolled-up cell: the worst window inside it
      const params = new URLSearchParams({ metric: "drift_effect", column: cell.column, version: cell.version,
        role: cell.role, start: new Date(cell.start).toISOString(),
        end: new Date(cell.start + STEP[every]).toISOString() });
      const inside = rowsOf(await api(`/monitors/${seg(name)}/series?${params}`));
      chosen = inside.reduce((a, b) => (b.value > a.value ? b : a), inside[0] || cell);
    }
    const params = new URLSearchParams({ start: new Date(chosen.start).toISOString(), version: chosen.version,
      role: chosen.role });
    const [window, training] = await Promise.all([
      api(`/monitors/${seg(name)}/profile?${params}`),
      api(`/monitors/${seg(name)}/reference?version=${encodeURIComponent(chosen.version)}`)]);
    distributions(detail, chosen, training.columns[chosen.column], window.columns[chosen.column]);
  } catch (error) {
    detail.replaceChildren(errorBox(error));
  }
  detail.dataset.state = "ready";
}

function distributions(detail, cell, training, current) {
  const title = `${cell.column}: window ${new Date(cell.start).toISOString().slice(0, 16).replace("T", " ")} UTC`
    + ` (v${cell.version} ${cell.role}), effect ${num(cell.value)}`;
  const chart = h("div", { class: "chart", dataset: { key: "distribution", column: cell.column,
    start: String(cell.start) } });
  detail.replaceChildren(h("h3", {}, title), chart, h("p", { class: "muted small" },
    `missing: training ${share(training)}, window ${share(current)}`));
  if (!training || !current) {
    chart.replaceChildren(h("p", { class: "muted" }, "This input has no profile on one side."));
    return;
  }
  const numeric = training.kind === "numeric";
  const [x, left, right, hover] = numeric ? numericBins(training, current) : categoryBins(training, current);
  const bar = (name, y, color) => ({ type: "bar", name, x, y, text: hover, textposition: "none", marker: { color },
    opacity: 0.7,
    hovertemplate: "%{text}: %{y:.3f}<extra>" + name + "</extra>" });
  plot(chart, [bar("training", left, "#4c72b0"), bar("window", right, "#d62728")], {
    barmode: "overlay", bargap: 0, yaxis: { title: { text: "share of rows" } },
    xaxis: numeric ? { title: { text: esc(cell.column) } } : { type: "category" } });
}

function share(profile) {
  if (!profile) return "n/a";
  const total = profile.count + profile.nulls;
  return total ? `${(100 * profile.nulls / total).toFixed(1)}%` : "0%";
}

function normalised(counts) {
  const total = counts.reduce((a, b) => a + b, 0) || 1;
  return counts.map((c) => c / total);
}

/** Bars at each bin's middle; the two open-ended outer bins drawn as wide as their neighbour. */
function numericBins(training, current) {
  const e = training.edges;
  const last = e.length - 1;
  const x = [e[0] - (e[1] - e[0]) / 2, ...e.slice(1).map((edge, i) => (e[i] + edge) / 2),
    e[last] + (e[last] - e[last - 1]) / 2];
  const hover = [`< ${num(e[0])}`, ...e.slice(1).map((edge, i) => `${num(e[i])} to ${num(edge)}`),
    `≥ ${num(e[last])}`];
  const sameBins = current.kind === "numeric" && current.counts.length === training.counts.length;
  return [x, normalised(training.counts), sameBins ? normalised(current.counts) : x.map(() => null), hover];
}

function categoryBins(training, current) {
  const left = new Map(training.freq);
  const right = new Map(current.kind === "categorical" ? current.freq : []);
  const keys = [...new Set([...left.keys(), ...right.keys()])]
    .sort((a, b) => (left.get(b) || 0) - (left.get(a) || 0)).slice(0, MAX_CATEGORIES);
  const total = (m) => [...m.values()].reduce((a, b) => a + b, 0) || 1;
  const labels = keys.map((k) => esc(k));
  return [labels, keys.map((k) => (left.get(k) || 0) / total(left)),
    keys.map((k) => (right.get(k) || 0) / total(right)), labels];
}
