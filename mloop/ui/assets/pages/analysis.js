// A model version's analysis (mloop.analyze): the overall metrics, every slice with its count and 95% interval
// sorted by how far it falls behind overall, calibration and confusion for a classifier, residuals by slice for a
// regressor, the fairness metrics of each sensitive feature with its groups' rates, and the stored HTML report.

import { api, esc, h, link, num, pairs, plot, root, section, seg, table } from "../lib.js";

const HIGHER_IS_BETTER = { accuracy: true, f1: true, auc: true, mae: false, rmse: false };
const RATES = [["selection_rate", "selection rate"], ["true_positive_rate", "true positive rate"],
  ["false_positive_rate", "false positive rate"]];

export async function render(main, { model, version }) {
  const base = `/registry/models/${seg(model)}/versions/${seg(version)}/analysis`;
  const analysis = await api(base);
  main.append(header(analysis, model, version, `${root}/api${base}/report`));
  main.append(section("Overall", overall(analysis)));
  const metrics = Object.keys(analysis.overall.metrics);
  const slices = h("div", {});
  main.append(section("Slices", slices));
  const charts = [slicesView(slices, analysis, metrics)];
  if (analysis.task === "classification") {
    const calibration = h("div", { class: "chart", id: "calibration" });
    const confusion = h("div", { class: "chart", id: "confusion" });
    main.append(h("div", { class: "cards" }, section("Calibration", calibration), section("Confusion matrix", confusion)));
    charts.push(calibrationChart(calibration, analysis.calibration || []), confusionChart(confusion, analysis.confusion));
  } else {
    const residuals = h("div", { class: "chart", id: "residuals" });
    main.append(section("Residuals by slice (prediction error: label minus prediction)", residuals));
    charts.push(residualChart(residuals, analysis));
  }
  const [fair, drawn] = fairness(analysis.fairness || {});
  main.append(section("Fairness", fair));
  charts.push(...drawn.map((draw) => draw())); // once in the page: Plotly sizes a chart by its element
  if (analysis.notes && analysis.notes.length) main.append(section("Notes", h("ul", {}, analysis.notes.map((n) => h("li", {}, n)))));
  await Promise.all(charts);
}

function header(analysis, model, version, reportUrl) {
  const crumbs = h("div", { class: "crumbs" }, link("/models", "Models"), " / ",
    link(`/models/${seg(model)}`, model), " / ", link(`/models/${seg(model)}/versions/${seg(version)}`, `v${version}`),
    " /");
  const facts = h("div", { class: "facts" },
    h("span", {}, "task ", h("b", {}, analysis.task)),
    h("span", {}, "label ", h("b", {}, analysis.label)),
    h("span", {}, "rows ", h("b", {}, String(analysis.n_rows))),
    h("span", {}, "primary metric ", h("b", {}, analysis.primary_metric)),
    h("span", {}, "slices of fewer than ", h("b", {}, String(analysis.min_slice_size)), " rows are not judged"),
    h("span", {}, "made ", h("b", {}, analysis.created)));
  // the report is served with a sandbox policy, so opened on its own its scripts still cannot reach this server
  const open = h("a", { href: reportUrl, target: "_blank", rel: "noopener noreferrer", class: "report-link" },
    "Open the HTML report");
  const frame = h("details", { class: "report", ontoggle: (event) => {
    const box = event.target;
    if (box.open && !box.querySelector("iframe")) {
      box.append(h("iframe", { src: reportUrl, sandbox: "allow-scripts", title: "analysis report", class: "report" }));
    }
  } }, h("summary", {}, "Show the report in this page"));
  return h("div", {}, crumbs, h("h1", {}, `Analysis of ${model} v${version}`), facts, h("p", {}, open), frame);
}

function interval(m) {
  return m && m.low !== null && m.low !== undefined ? `[${num(m.low)}, ${num(m.high)}]` : "";
}

function overall(analysis) {
  const rows = Object.entries(analysis.overall.metrics).map(([name, m]) => ({ name, ...m }));
  const metrics = table([
    { label: "Metric", cell: (r) => r.name },
    { label: "Value", cell: (r) => num(r.value), class: "n" },
    { label: "95% interval", cell: (r) => interval(r), class: "n" },
    { label: "Interval method", cell: (r) => (analysis.ci_methods || {})[r.name] || "" },
  ], rows, { className: "overall" });
  const residuals = Object.fromEntries(Object.entries(analysis.overall).filter(([k]) => k.startsWith("residual_")));
  return h("div", {}, h("p", { class: "muted" }, `${analysis.overall.count} rows`), metrics,
    Object.keys(residuals).length ? h("div", {}, h("h3", {}, "Residuals"), pairs(residuals)) : null);
}

/** How far a slice falls behind overall on ``metric`` (positive: worse); null when either is unknown. */
function gap(analysis, slice, metric) {
  const all = analysis.overall.metrics[metric];
  const mine = slice.metrics[metric];
  if (!all || !mine || all.value === null || mine.value === null) return null;
  return HIGHER_IS_BETTER[metric] === false ? mine.value - all.value : all.value - mine.value;
}

function sortedSlices(analysis, metric) {
  const key = (s) => { const g = gap(analysis, s, metric); return g === null ? -Infinity : g; };
  return [...analysis.slices].sort((a, b) => key(b) - key(a));
}

const sliceLabel = (s) => `${s.slice} = ${s.value}`;
// a tick names its slice in at most this many characters (the hover text and the table have it whole), so
// one long category value cannot squeeze the chart; a number keeps equal ticks apart
const TICK = 36;
const tick = (s, i) => {
  const text = sliceLabel(s);
  return esc(text.length > TICK ? `${text.slice(0, TICK - 1)}… (${i + 1})` : text);
};

function slicesView(box, analysis, metrics) {
  const element = h("div", { class: "chart", id: "slices" });
  const tableBox = h("div", { class: "table-box" });
  let chosen = analysis.primary_metric in analysis.overall.metrics ? analysis.primary_metric : metrics[0];
  const draw = () => {
    const rows = sortedSlices(analysis, chosen);
    tableBox.replaceChildren(slicesTable(analysis, rows, metrics, chosen));
    return slicesChart(element, analysis, rows, chosen);
  };
  const chooser = h("select", { name: "metric", onchange: (event) => { chosen = event.target.value; draw(); } },
    metrics.map((m) => h("option", { value: m, selected: m === chosen }, m)));
  box.append(h("div", { class: "controls" }, h("label", {}, "sorted by the gap to overall on ", chooser)), element,
    tableBox);
  if (!analysis.slices.length) {
    box.replaceChildren(h("p", { class: "muted" }, "No slices: pass slices=[...] or sensitive=[...] to mloop.analyze."));
    return Promise.resolve();
  }
  return draw();
}

function slicesTable(analysis, rows, metrics, chosen) {
  return table([
    { label: "Slice", cell: (s) => s.slice },
    { label: "Value", cell: (s) => String(s.value) },
    { label: "Rows", cell: (s) => String(s.count), class: "n" },
    { label: `Gap on ${chosen}`, cell: (s) => num(gap(analysis, s, chosen)), class: "n gap" },
    ...metrics.flatMap((m) => [
      { label: m, cell: (s) => num((s.metrics[m] || {}).value), class: `n metric-${m}` },
      { label: `${m} 95%`, cell: (s) => interval(s.metrics[m]), class: "n muted" }]),
  ], rows, { className: "slices", hook: (tr, s) => {
    Object.assign(tr.dataset, { slice: s.slice, value: String(s.value), count: String(s.count) });
    if (s.count < analysis.min_slice_size) {
      tr.classList.add("small-slice");
      tr.title = `fewer than ${analysis.min_slice_size} rows: its interval is wide`;
    }
  } });
}

function slicesChart(element, analysis, rows, metric) {
  const shown = rows.filter((s) => s.metrics[metric] && s.metrics[metric].value !== null);
  const m = (s) => s.metrics[metric];
  const all = analysis.overall.metrics[metric].value;
  const labels = shown.map(tick);
  return plot(element, [{
    type: "scatter", mode: "markers", name: esc(metric), x: labels, y: shown.map((s) => m(s).value),
    text: shown.map((s) => `${esc(sliceLabel(s))}: ${s.count} rows`), hovertemplate: "%{text}: %{y:.4g}<extra></extra>",
    marker: { size: 9, color: shown.map((s) => (s.count < analysis.min_slice_size ? "#98a2b3" : "#2456c9")) },
    error_y: { type: "data", symmetric: false, array: shown.map((s) => (m(s).high ?? m(s).value) - m(s).value),
      arrayminus: shown.map((s) => m(s).value - (m(s).low ?? m(s).value)), color: "#98a2b3" },
  }], { height: 380, showlegend: false, margin: { l: 56, r: 16, t: 24, b: 150 },
    xaxis: { type: "category", tickangle: -35 },
    yaxis: { title: { text: esc(metric) }, zeroline: false },
    shapes: all === null ? [] : [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: all, y1: all,
      line: { color: "#d62728", dash: "dash", width: 1.5 } }],
    annotations: all === null ? [] : [{ xref: "paper", x: 1, y: all, xanchor: "right", yanchor: "bottom",
      text: `overall ${num(all)}`, showarrow: false, font: { color: "#d62728" } }] })
    .then(() => { element.dataset.points = String(shown.length); element.dataset.metric = metric; });
}

function calibrationChart(element, bins) {
  const filled = bins.filter((b) => b.count > 0 && b.observed !== null);
  if (!filled.length) {
    element.replaceWith(h("p", { class: "muted" }, "No calibration: the model gives no probabilities."));
    return Promise.resolve();
  }
  return plot(element, [
    { type: "scatter", mode: "lines", name: "perfect", x: [0, 1], y: [0, 1], line: { color: "#98a2b3", dash: "dot" } },
    { type: "scatter", mode: "lines+markers", name: "observed", x: filled.map((b) => b.mean_predicted),
      y: filled.map((b) => b.observed), text: filled.map((b) => `${b.count} rows`),
      error_y: { type: "data", symmetric: false, array: filled.map((b) => b.high - b.observed),
        arrayminus: filled.map((b) => b.observed - b.low), color: "#98a2b3" }, line: { color: "#2456c9" } },
  ], { height: 320, xaxis: { title: { text: "mean predicted probability" }, range: [0, 1] },
    yaxis: { title: { text: "observed frequency" }, range: [0, 1] } })
    .then(() => { element.dataset.points = String(filled.length); });
}

function confusionChart(element, confusion) {
  if (!confusion || !confusion.labels || !confusion.labels.length) {
    element.replaceWith(h("p", { class: "muted" }, "No confusion matrix."));
    return Promise.resolve();
  }
  const labels = confusion.labels.map((l) => esc(String(l)));
  return plot(element, [{ type: "heatmap", x: labels, y: labels, z: confusion.matrix, colorscale: "Blues",
    reversescale: true, showscale: false, texttemplate: "%{z}", hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>" }],
  { height: 320, xaxis: { title: { text: "predicted" }, type: "category", side: "bottom" },
    yaxis: { title: { text: "true" }, type: "category", autorange: "reversed" } })
    .then(() => { element.dataset.points = String(labels.length); });
}

function residualChart(element, analysis) {
  const rows = sortedSlices(analysis, analysis.primary_metric).filter((s) => s.residual_p50 !== null
    && s.residual_p50 !== undefined);
  const labels = rows.map(tick);
  return plot(element, [
    { type: "scatter", mode: "markers", name: "median (5th to 95th percentile)", x: labels,
      y: rows.map((s) => s.residual_p50), marker: { color: "#2456c9", size: 9 },
      error_y: { type: "data", symmetric: false, array: rows.map((s) => s.residual_p95 - s.residual_p50),
        arrayminus: rows.map((s) => s.residual_p50 - s.residual_p05), color: "#98a2b3" } },
    { type: "scatter", mode: "markers", name: "mean", x: labels, y: rows.map((s) => s.residual_mean),
      marker: { color: "#d62728", symbol: "diamond", size: 8 } },
  ], { height: 380, margin: { l: 56, r: 16, t: 36, b: 150 }, xaxis: { type: "category", tickangle: -35 },
    yaxis: { title: { text: "residual" }, zeroline: true } })
    .then(() => { element.dataset.points = String(rows.length); });
}

/** A card per sensitive feature (its Fairlearn metrics, its groups' rates as bars and a table): [box, the
 * functions that draw its charts once the box is in the page]. */
function fairness(report) {
  const features = Object.keys(report).sort();
  if (!features.length) {
    return [h("p", { class: "muted" }, "No sensitive features: pass sensitive=[...] to mloop.analyze."), []];
  }
  const drawn = [];
  const cards = features.map((feature) => {
    const r = report[feature];
    const summary = Object.fromEntries(Object.entries(r).filter(([k]) => k !== "groups"));
    const groups = table([
      { label: "Group", cell: (g) => String(g.group) },
      { label: "Rows", cell: (g) => String(g.count), class: "n" },
      ...RATES.map(([key, label]) => ({ label, cell: (g) => num(g[key]), class: `n ${key}` })),
    ], r.groups || [], { className: "groups", hook: (tr, g) => { tr.dataset.group = String(g.group); } });
    const chart = h("div", { class: "chart rates" });
    drawn.push(() => ratesChart(chart, r.groups || []));
    return h("section", { class: "card fairness", dataset: { feature } }, h("h3", {}, feature), pairs(summary), chart,
      groups);
  });
  return [h("div", { class: "cards" }, cards), drawn];
}

function ratesChart(element, groups) {
  const names = groups.map((g) => esc(String(g.group)));
  return plot(element, RATES.map(([key, label], i) => ({ type: "bar", name: label, x: names,
    y: groups.map((g) => g[key]), marker: { color: ["#2456c9", "#2ca02c", "#d62728"][i] } })),
  { height: 260, barmode: "group", xaxis: { type: "category" }, yaxis: { title: { text: "rate" }, rangemode: "tozero" },
    margin: { l: 56, r: 16, t: 36, b: 40 } })
    .then(() => { element.dataset.points = String(groups.length); });
}
