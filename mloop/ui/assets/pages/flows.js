// Flows: the runs of every flow with their status, and one run: its graph of steps (an SVG drawn from the edges
// its tasks recorded, each step coloured by state, a foreach shown with its fan-out), the tasks of the chosen
// step with their state, time and what was reused (a resumed origin or the cache), their artifacts, and the
// captured logs of any task, and a preview of any artifact (./flowartifact.js).

import { api, bytes, duration, errorBox, h, link, query, section, seg, setQuery, status, table, when } from "../lib.js";
import { showArtifact } from "./flowartifact.js";

const NS = "http://www.w3.org/2000/svg";
const BOX = { width: 176, height: 54, gapX: 60, gapY: 22 };
const COLOURS = { finished: "#e6f4ea", failed: "#fde8e7", running: "#e8effc", killed: "#f2f4f7" };

export async function render(main, { run: runId }) {
  return runId === undefined ? runs(main) : flowRun(main, runId);
}

async function runs(main) {
  const found = await api("/flows/runs?limit=200");
  main.append(h("h1", {}, "Flows"), h("div", { class: "table-box" }, table([
    { label: "Flow", cell: (r) => r.flow },
    { label: "Run", cell: (r) => link(`/flows/${seg(r.run_id)}`, r.run_id.slice(0, 12)) },
    { label: "Status", cell: (r) => status(r.status) },
    { label: "Started", cell: (r) => when(r.created) },
    { label: "Took", cell: (r) => duration(r.created, r.ended) },
    { label: "Resumed from", cell: (r) => (r.origin_run_id ? link(`/flows/${seg(r.origin_run_id)}`,
      r.origin_run_id.slice(0, 12)) : "") },
    { label: "Tags", cell: (r) => r.tags.map((t) => h("span", { class: "tag" }, t)) },
  ], found, { className: "flow-runs", empty: "No flow runs yet: mloop flow run FILE." })));
}

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) element.append(child instanceof Node ? child : document.createTextNode(child));
  return element;
}

async function flowRun(main, runId) {
  const run = await api(`/flows/runs/${seg(runId)}`);
  const steps = stepsOf(run.tasks);
  const chosen = query().step && steps.has(query().step) ? query().step : [...steps.keys()][0];
  const detail = h("div", { class: "step-detail" });
  const graph = h("div", { class: "flow-graph" });
  const choose = (name) => {
    setQuery({ step: name });
    graph.querySelectorAll("g.step").forEach((g) => g.classList.toggle("chosen", g.dataset.step === name));
    stepDetail(detail, run, steps.get(name));
  };
  graph.append(draw(steps, choose));
  main.append(h("div", { class: "crumbs" }, link("/flows", "Flows"), " /"), h("h1", {}, `${run.flow} ${run.run_id.slice(0, 12)}`),
    h("div", { class: "facts" }, h("span", {}, status(run.status)),
      h("span", {}, "started ", h("b", {}, when(run.created))),
      run.ended ? h("span", {}, "took ", h("b", {}, duration(run.created, run.ended))) : null,
      h("span", {}, "executor ", h("b", {}, run.executor)),
      h("span", {}, "tracking ", link(`/runs/${seg(run.run_id)}`, "run page")),
      run.origin_run_id ? h("span", {}, "resumed from ", link(`/flows/${seg(run.origin_run_id)}`,
        run.origin_run_id.slice(0, 12))) : null),
    section("Steps", graph), detail);
  if (chosen) choose(chosen);
}

/** Steps in the order they first ran, each with its tasks and the steps that fed it. */
function stepsOf(tasks) {
  const stepOf = new Map(tasks.map((t) => [t.task_id, t.step]));
  const steps = new Map();
  for (const task of [...tasks].sort((a, b) => a.started - b.started)) {
    if (!steps.has(task.step)) steps.set(task.step, { name: task.step, tasks: [], parents: new Set() });
    const step = steps.get(task.step);
    step.tasks.push(task);
    for (const input of task.inputs) {
      const parent = stepOf.get(input);
      if (parent && parent !== task.step) step.parents.add(parent);
    }
  }
  const order = [...steps.keys()];
  for (const step of steps.values()) { // a column per depth; a loop's edge back is not a parent for layout
    const earlier = [...step.parents].filter((p) => order.indexOf(p) < order.indexOf(step.name));
    step.depth = earlier.length ? Math.max(...earlier.map((p) => steps.get(p).depth)) + 1 : 0;
  }
  return steps;
}

function stepState(step) {
  const states = new Set(step.tasks.map((t) => t.status));
  return ["failed", "running", "killed"].find((s) => states.has(s)) || "finished";
}

function draw(steps, choose) {
  const rows = new Map();
  const at = new Map();
  for (const step of steps.values()) {
    const row = rows.get(step.depth) || 0;
    rows.set(step.depth, row + 1);
    at.set(step.name, { x: 10 + step.depth * (BOX.width + BOX.gapX), y: 10 + row * (BOX.height + BOX.gapY) });
  }
  const width = 20 + (Math.max(...rows.keys()) + 1) * (BOX.width + BOX.gapX);
  const height = 20 + Math.max(...rows.values()) * (BOX.height + BOX.gapY);
  const edges = [...steps.values()].flatMap((step) => [...step.parents].map((parent) => {
    const from = at.get(parent);
    const to = at.get(step.name);
    const back = from.x >= to.x;
    return svg("path", { class: back ? "edge back" : "edge", "marker-end": "url(#arrow)",
      d: `M${from.x + BOX.width},${from.y + BOX.height / 2} C${from.x + BOX.width + 40},${from.y + BOX.height / 2}`
        + ` ${to.x - 40},${to.y + BOX.height / 2} ${to.x},${to.y + BOX.height / 2}` });
  }));
  const nodes = [...steps.values()].map((step) => {
    const { x, y } = at.get(step.name);
    const state = stepState(step);
    const reused = step.tasks.filter((t) => t.reused_from).length;
    const seconds = step.tasks.reduce((sum, t) => sum + (t.ended ? t.ended - t.started : 0), 0) / 1000;
    const fan = step.tasks.length > 1 ? ` ×${step.tasks.length}` : "";
    return svg("g", { class: `step state-${state}`, "data-step": step.name, "data-tasks": step.tasks.length,
      "data-state": state, tabindex: 0, role: "button", onclick: () => choose(step.name),
      onkeydown: (e) => { if (e.key === "Enter") choose(step.name); } },
    svg("title", {}, `${step.name}: ${state}`),
    fan ? svg("rect", { x: x + 6, y: y + 6, width: BOX.width, height: BOX.height, rx: 6, class: "stack" }) : [],
    svg("rect", { x, y, width: BOX.width, height: BOX.height, rx: 6, fill: COLOURS[state] || "#fff" }),
    svg("text", { x: x + 10, y: y + 21, class: "name" }, `${step.name}${fan}`),
    svg("text", { x: x + 10, y: y + 41, class: "meta" }, `${state} · ${seconds.toFixed(1)} s`
      + (reused ? ` · ${reused} reused` : "")));
  });
  return svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "flow" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
      markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z" }))),
    edges, nodes);
}

function stepDetail(detail, run, step) {
  const logs = h("div", { class: "logs" });
  const showLogs = async (task) => {
    logs.replaceChildren(h("p", { class: "muted" }, "Loading..."));
    try {
      const found = await api(`/flows/runs/${seg(run.run_id)}/tasks/${seg(task.task_id)}/logs`);
      logs.replaceChildren(h("div", {}, h("h3", {}, `Logs of ${found.path}`),
        ["stdout", "stderr"].map((name) => [h("h3", {}, name + (found[`${name}_truncated`] ? " (its end)" : "")),
          h("pre", { class: `code log ${name}` }, found[name] || "(empty)")])));
    } catch (error) {
      logs.replaceChildren(errorBox(error));
    }
  };
  detail.replaceChildren(section(`Step ${step.name}`, table([
    { label: "Task", cell: (t) => t.path },
    { label: "State", cell: (t) => status(t.status) },
    { label: "Attempts", cell: (t) => String(t.attempts), class: "n" },
    { label: "Started", cell: (t) => when(t.started) },
    { label: "Took", cell: (t) => duration(t.started, t.ended) },
    { label: "Reused", cell: (t) => (t.reused_from ? `${t.cached ? "from the cache" : "from the resumed run"}`
      + ` (task ${t.reused_from.slice(0, 10)})` : "") },
    { label: "Artifacts", cell: (t) => t.artifacts.map((a) => h("button", { type: "button", class: "tag artifact",
      title: `sha256 ${a.sha256}`, dataset: { name: a.name }, onclick: () => showArtifact(logs, run, t, a) },
    `${a.name} (${a.encoding}, ${bytes(a.size)})`)) },
    { label: "Error", cell: (t) => (t.error ? h("span", { class: "bad" }, t.error) : "") },
    { label: "", cell: (t) => h("button", { type: "button", class: "logs-button", onclick: () => showLogs(t) },
      "Logs") },
  ], step.tasks, { className: "tasks", hook: (tr, t) => { tr.dataset.path = t.path; } }), logs));
}
