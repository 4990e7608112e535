// One study: its trials over time (the objective per trial, the best so far, where pruned trials stopped), the
// params against the objective in parallel coordinates, which params mattered (Optuna's importances), and every
// trial with a link to its run (a trial is a child run of the study's run), the best one highlighted.

import { api, duration, esc, h, link, num, plot, section, seg, table } from "../lib.js";
import { parallel } from "./compare.js";

const STATE_STATUS = { complete: "finished", pruned: "killed", fail: "failed", running: "running" };

export async function render(main, { study: name }) {
  const [study, importances] = await Promise.all([
    api(`/tuning/studies/${seg(name)}`),
    api(`/tuning/studies/${seg(name)}/importances`).catch(() => ({})),
  ]);
  const best = bestTrial(study);
  main.append(header(study, best));
  const over = h("div", { class: "chart", id: "trials" });
  const matters = h("div", { class: "chart", id: "importances" });
  const params = h("div", { class: "chart", id: "parallel" });
  main.append(section("Trials over time", over),
    h("div", { class: "cards" }, section("Parameter importances", matters),
      section("Parameters against the objective", params)),
    section(`Trials (${study.trials.length})`, trialsTable(study, best)));
  await Promise.all([trialsChart(over, study), importanceChart(matters, importances),
    parallelChart(params, study, best)]);
}

function bestTrial(study) {
  const done = study.trials.filter((t) => t.state === "complete" && t.value !== null);
  if (!done.length) return null;
  const better = study.direction === "maximize" ? (a, b) => a.value > b.value : (a, b) => a.value < b.value;
  return done.reduce((found, t) => (better(t, found) ? t : found));
}

function header(study, best) {
  const counts = {};
  for (const t of study.trials) counts[t.state] = (counts[t.state] || 0) + 1;
  const facts = h("div", { class: "facts" },
    h("span", {}, "direction ", h("b", {}, study.direction)),
    h("span", {}, "metric ", h("b", {}, study.metric)),
    h("span", {}, "trials ", h("b", {}, Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(", ") || "none")),
    best ? h("span", { class: "best-value" }, "best ", h("b", {}, num(best.value)), ` (trial #${best.number})`) : null,
    study.run_id ? h("span", {}, "study run ", link(`/runs/${seg(study.run_id)}`, study.run_id.slice(0, 12))) : null);
  return h("div", {}, h("div", { class: "crumbs" }, link("/studies", "Studies"), " /"), h("h1", {}, study.name),
    facts);
}

/** The value where a trial ended: its objective, or for a pruned trial the last value it reported. */
function lastReported(trial) {
  const steps = Object.keys(trial.intermediate).map(Number).sort((a, b) => a - b);
  return steps.length ? trial.intermediate[String(steps[steps.length - 1])] : null;
}

function trialsChart(element, study) {
  const done = study.trials.filter((t) => t.state === "complete" && t.value !== null);
  const pruned = study.trials.filter((t) => t.state === "pruned" && lastReported(t) !== null);
  const pick = study.direction === "maximize" ? Math.max : Math.min;
  let running = null;
  const bestSoFar = done.map((t) => (running = running === null ? t.value : pick(running, t.value)));
  const hover = (t) => esc(Object.entries(t.params).map(([k, v]) => `${k}=${v}`).join(", "));
  // the axis spans the completed trials: a pruned trial that stopped far off (often, that is why it was pruned)
  // is drawn at the edge, with where it stopped in its hover text, so it does not flatten the others
  const values = done.map((t) => t.value);
  const [lo, hi] = values.length ? [Math.min(...values), Math.max(...values)] : [0, 1];
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
  const clamp = (v) => Math.min(hi + pad, Math.max(lo - pad, v));
  const stopped = pruned.map(lastReported);
  const traces = [
    { type: "scatter", mode: "markers", name: "completed", x: done.map((t) => t.number), y: values,
      text: done.map(hover), marker: { color: "#1f77b4", size: 8 } },
    { type: "scatter", mode: "lines", name: "best so far", x: done.map((t) => t.number), y: bestSoFar,
      line: { color: "#2ca02c", shape: "hv", width: 2 }, hoverinfo: "skip" },
    { type: "scatter", mode: "markers", name: "pruned (where it stopped)", x: pruned.map((t) => t.number),
      y: stopped.map(clamp), customdata: stopped,
      text: pruned.map((t, i) => `stopped at ${num(stopped[i])}; ${hover(t)}`),
      hovertemplate: "trial %{x}: %{text}<extra>pruned</extra>", marker: { color: "#d62728", symbol: "x", size: 9 } },
  ];
  return plot(element, traces, { height: 320, xaxis: { title: { text: "trial" }, zeroline: false },
    yaxis: { title: { text: esc(study.metric) }, zeroline: false, range: [lo - pad * 1.5, hi + pad * 1.5] } })
    .then(() => { element.dataset.points = String(done.length + pruned.length); });
}

function importanceChart(element, importances) {
  const ranked = Object.entries(importances).sort((a, b) => a[1] - b[1]); // the largest bar on top
  if (!ranked.length) {
    element.replaceWith(h("p", { class: "muted", id: "importances" },
      "Importances need at least two completed trials whose params differ."));
    return Promise.resolve();
  }
  return plot(element, [{ type: "bar", orientation: "h", x: ranked.map(([, v]) => v),
    y: ranked.map(([k]) => esc(k)), marker: { color: "#2456c9" } }],
  { height: Math.max(200, 60 + 28 * ranked.length), showlegend: false, margin: { l: 120, r: 16, t: 16, b: 40 },
    xaxis: { title: { text: "importance (fANOVA)" }, range: [0, 1] }, yaxis: { type: "category" } })
    .then(() => { element.dataset.points = String(ranked.length); });
}

function parallelChart(element, study, best) {
  const done = study.trials.filter((t) => t.state === "complete" && t.value !== null);
  const keys = [...new Set(done.flatMap((t) => Object.keys(t.params)))].sort();
  if (!done.length || !keys.length) {
    element.replaceWith(h("p", { class: "muted", id: "parallel" }, "Needs completed trials with params."));
    return Promise.resolve();
  }
  // one line per trial, shaded from the worst objective (light) to the best (dark blue)
  const values = done.map((t) => t.value);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const goodness = (v) => (hi > lo ? (study.direction === "maximize" ? (v - lo) / (hi - lo) : (hi - v) / (hi - lo)) : 1);
  const colors = done.map((t) => (best && t.number === best.number ? "#2ca02c"
    : `rgba(36, 86, 201, ${(0.15 + 0.75 * goodness(t.value)).toFixed(2)})`));
  const runs = done.map((t) => ({ params: t.params, metrics: { [study.metric]: t.value } }));
  const dims = [...keys.map((k) => `params.${k}`), `metrics.${study.metric}`];
  return parallel(element, runs, done.map((t) => `trial ${t.number}`), dims, { colors, showlegend: false });
}

function trialsTable(study, best) {
  const keys = [...new Set(study.trials.flatMap((t) => Object.keys(t.params)))].sort();
  const rows = [...study.trials].sort((a, b) => a.number - b.number);
  return h("div", { class: "table-box" }, table([
    { label: "#", cell: (t) => String(t.number), class: "n" },
    { label: "State", cell: (t) => h("span", { class: `status status-${STATE_STATUS[t.state] || "other"}` }, t.state) },
    { label: study.metric, cell: (t) => (t.value === null && t.state === "pruned"
      ? h("span", { class: "muted" }, `${num(lastReported(t))} (last reported)`) : num(t.value)), class: "n" },
    ...keys.map((k) => ({ label: k, cell: (t) => (k in t.params ? num(t.params[k]) : ""), class: "param" })),
    { label: "Steps reported", cell: (t) => String(Object.keys(t.intermediate).length), class: "n" },
    { label: "Took", cell: (t) => duration(Date.parse(t.start), Date.parse(t.end)) },
    { label: "Run", cell: (t) => (t.run_id ? link(`/runs/${seg(t.run_id)}`, t.run_id.slice(0, 12)) : "") },
  ], rows, { className: "trials", empty: "No trials yet.", hook: (tr, t) => {
    tr.dataset.number = String(t.number);
    if (best && t.number === best.number) {
      tr.classList.add("best");
      tr.title = "best trial";
    }
  } }));
}
