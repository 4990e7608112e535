// Monitoring: every monitor with the alerts firing now, and one monitor's dashboard: traffic, latency, errors and
// schema violations over time, drift per input per window (drift.js), performance overall and by slice, A/B variants
// and shadow side by side (one line per version and role), and its alerts. A long range is read rolled up by
// the server (?every=1h|1d), so a month of 5-minute windows is hundreds of points, not hundreds of thousands.

import { api, esc, h, link, num, plot, query, section, seg, setQuery, status, table, when } from "../lib.js";
import { driftMap } from "./drift.js";

const LATENCY = ["latency_p50", "latency_p95", "latency_p99"];
const PERFORMANCE = ["accuracy", "f1", "auc", "rmse", "mae"];
const DASH = { primary: "solid", shadow: "dot" };

export async function render(main, { monitor: name }) {
  if (name === undefined) return overview(main);
  const monitors = await api("/monitors");
  const monitor = monitors.find((m) => m.name === name);
  if (!monitor) throw new Error(`No monitor named ${name}.`);
  const every = ["1h", "1d"].includes(query().every) ? query().every : "";
  main.append(h("div", { class: "crumbs" }, link("/monitoring", "Monitoring"), " /"),
    h("h1", {}, name), facts(monitor), controls(every));
  const base = `/monitors/${seg(name)}/series?${every ? `every=${every}&` : ""}`;
  const read = (metrics) => api(base + metrics.map((m) => `metric=${encodeURIComponent(m)}`).join("&"));
  const [usage, quality, performance, alerts, history] = await Promise.all([
    read(["rows", ...LATENCY, "error_rate"]), read(["violation_share"]), read(PERFORMANCE),
    api("/alerts"), api("/alerts/history"),
  ]);
  const mine = (rows) => rows.filter((a) => String(a.key).startsWith(`${name}/`));
  main.append(section("Alerts", alertTables(mine(alerts), mine(history))));
  const charts = h("div", { class: "charts" });
  main.append(section("Traffic, latency and errors", charts));
  const drawn = [
    lines(charts, "traffic", "Predictions per window", usage, (r) => r.metric === "rows" && !r.column),
    lines(charts, "latency", "Latency (ms)", usage, (r) => LATENCY.includes(r.metric), (r) => r.metric.slice(8)),
    lines(charts, "errors", "Failed requests (share of requests)", usage,
      (r) => r.metric === "error_rate" && !r.column),
    lines(charts, "violations", "Schema violations (share of rows)", quality, (r) => !r.column),
  ];
  await driftMap(main, name, every);
  drawn.push(...performanceCharts(main, performance));
  await Promise.all(drawn);
}

async function overview(main) {
  const [monitors, alerts] = await Promise.all([api("/monitors"), api("/alerts?firing=true")]);
  main.append(h("h1", {}, "Monitoring"), table([
    { label: "Monitor", cell: (m) => link(`/monitoring/${seg(m.name)}`, m.name) },
    { label: "Model", cell: (m) => link(`/models/${seg(m.model)}`, m.model) },
    { label: "Window", cell: (m) => `${m.window_seconds / 60} min`, class: "n" },
    { label: "Computed up to", cell: (m) => when(m.watermark) },
    { label: "Firing", cell: (m) => String(alerts.filter((a) => String(a.key).startsWith(`${m.name}/`)).length),
      class: "n" },
  ], monitors, { empty: "No monitors yet: mloop monitor create NAME MODEL --window 5m.", className: "monitors" }),
  section("Firing alerts", alertTable(alerts)));
}

function facts(monitor) {
  return h("div", { class: "facts" },
    h("span", {}, "model ", link(`/models/${seg(monitor.model)}`, monitor.model)),
    h("span", {}, "window ", h("b", {}, `${monitor.window_seconds / 60} min`)),
    h("span", {}, "computed up to ", h("b", {}, when(monitor.watermark))));
}

function controls(every) {
  const choice = h("select", { name: "every", onchange: (event) => {
    setQuery({ ...query(), every: event.target.value });
    window.dispatchEvent(new Event("mloop:navigate"));
  } }, [["", "each window"], ["1h", "hourly (worst latency, errors and drift)"], ["1d", "daily"]].map(
    ([v, label]) => h("option", { value: v, selected: v === every }, label)));
  return h("div", { class: "controls" }, h("label", {}, "Points: ", choice));
}

function alertTable(rows) {
  return table([
    { label: "Rule", cell: (a) => a.rule },
    { label: "Watching", cell: (a) => h("code", {}, a.key) },
    { label: "State", cell: (a) => status(a.state) },
    { label: "Severity", cell: (a) => a.severity },
    { label: "Since", cell: (a) => a.since },
    { label: "Value", cell: (a) => num(a.value), class: "n" },
  ], rows, { empty: "Nothing is firing.", className: "alerts" });
}

function alertTables(current, history) {
  const recent = history.slice(-200).reverse();
  return h("div", {}, alertTable(current.filter((a) => a.state !== "ok")), h("h3", {}, "History"), table([
    { label: "Window", cell: (e) => e.window },
    { label: "Rule", cell: (e) => e.rule },
    { label: "Event", cell: (e) => status(e.event) },
    { label: "Severity", cell: (e) => e.severity },
    { label: "Message", cell: (e) => e.message },
    { label: "Silenced", cell: (e) => (e.silenced ? "yes" : "") },
  ], recent, { empty: "No alert has fired yet.", className: "alert-history" }));
}

/** The API's column-wise series as rows. */
export function rowsOf(series) {
  return series.start.map((start, i) => ({ start, version: series.version[i], role: series.role[i],
    metric: series.metric[i], column: series.column[i], slice: series.slice[i], value: series.value[i] }));
}

/** One chart with a line per (version, role[, label]) of the rows ``keep`` selects. */
function lines(grid, key, title, series, keep, label = () => "") {
  const groups = new Map();
  for (const row of rowsOf(series).filter(keep)) {
    const name = [`v${row.version}`, row.role, label(row)].filter(Boolean).join(" ");
    if (!groups.has(name)) groups.set(name, { x: [], y: [], role: row.role });
    groups.get(name).x.push(new Date(row.start));
    groups.get(name).y.push(row.value);
  }
  const element = h("div", { class: "chart", dataset: { key, lines: String(groups.size) } });
  grid.append(h("div", {}, element));
  if (!groups.size) {
    element.replaceChildren(h("p", { class: "muted" }, `${title}: nothing measured yet.`));
    return Promise.resolve();
  }
  const traces = [...groups].map(([name, g]) => ({ x: g.x, y: g.y, name: esc(name), type: "scatter",
    mode: g.x.length > 1 ? "lines" : "markers", line: { width: 1.5, dash: DASH[g.role] || "dash" } }));
  // drawn on the next frame, once every chart of the grid is in place (a lone first chart would take the row)
  return new Promise(requestAnimationFrame).then(() => plot(element, traces,
    { title: { text: esc(title), x: 0.02, font: { size: 13 } }, showlegend: true }));
}

function performanceCharts(main, series) {
  const rows = rowsOf(series);
  const grid = h("div", { class: "charts" });
  main.append(section("Performance (once labels arrive)", rows.length ? grid
    : h("p", { class: "muted" }, "No labels yet: send them to POST /feedback.")));
  const metrics = PERFORMANCE.filter((m) => rows.some((r) => r.metric === m));
  const drawn = metrics.map((m) => lines(grid, `perf-${m}`, `${m} over time`, series,
    (r) => r.metric === m && !r.slice));
  const main_metric = metrics[0];
  if (main_metric && rows.some((r) => r.slice)) {
    drawn.push(lines(grid, "by-slice", `${main_metric} by slice`, series,
      (r) => r.metric === main_metric && r.slice, (r) => r.slice));
  }
  return drawn;
}
