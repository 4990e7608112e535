// One run: what it was (params, tags, code version, datasets), what it measured (metric charts downsampled by
// the server; zooming asks for the visible steps in detail), what it left (artifacts, previewed in the page), and
// where it sits (parent, children, the model versions made from it).

import { api, duration, h, link, pairs, section, seg, status, table, when } from "../lib.js";
import { metricCharts } from "./charts.js";
import { artifactBrowser } from "./artifacts.js";

const CODE_TAGS = ["mloop.git.commit", "mloop.git.dirty", "mloop.source", "mloop.command", "mloop.python",
  "mloop.host", "mloop.pid"];

export async function render(main, { run: runId }) {
  const run = await api(`/runs/${seg(runId)}`);
  const [experiment, inputs, versions, children] = await Promise.all([
    api(`/experiments/${seg(run.experiment_id)}`).catch(() => null),
    api(`/runs/${seg(runId)}/inputs`),
    api(`/runs/${seg(runId)}/model-versions`),
    api("/runs/page", { method: "POST", body: { parent_run_id: runId, limit: 200, with_columns: false } }),
  ]);
  main.append(header(run, experiment));
  const keys = Object.keys(run.metrics).sort();
  const userTags = Object.fromEntries(Object.entries(run.tags).filter(([k]) => !k.startsWith("mloop.")));
  main.append(h("div", { class: "cards" },
    section("Params", pairs(run.params)),
    section("Latest metrics", pairs(run.metrics)),
    section("Tags", pairs(userTags)),
    section("Code version", codeVersion(run.tags))));
  const trained = keys.filter((k) => !k.startsWith("system/"));
  const system = keys.filter((k) => k.startsWith("system/"));
  const charts = [];
  if (trained.length) charts.push(metricCharts(main, "Metrics", [runId], trained, { names: [run.name] }));
  if (system.length) charts.push(metricCharts(main, "System metrics", [runId], system, { names: [run.name] }));
  main.append(section("Artifacts", await artifactBrowser(runId)));
  main.append(h("div", { class: "cards" },
    section("Datasets used", datasets(inputs)),
    section("Lineage", lineage(run, versions, children))));
  await Promise.all(charts);
}

function header(run, experiment) {
  const crumbs = h("div", { class: "crumbs" }, link("/", "Experiments"), " / ",
    experiment ? link(`/experiments/${seg(experiment.experiment_id)}`, experiment.name) : run.experiment_id, " /");
  const facts = h("div", { class: "facts" },
    h("span", {}, status(run.status)),
    h("span", {}, "id ", h("b", {}, run.run_id)),
    h("span", {}, "started ", h("b", {}, when(run.start_time))),
    run.end_time ? h("span", {}, "took ", h("b", {}, duration(run.start_time, run.end_time))) : null,
    h("span", {}, "by ", h("b", {}, run.user)),
    run.parent_run_id ? h("span", {}, "child of ", link(`/runs/${seg(run.parent_run_id)}`,
      run.parent_run_id.slice(0, 12))) : null);
  return h("div", {}, crumbs, h("h1", {}, run.name), facts,
    run.description ? h("p", { class: "description" }, run.description) : null);
}

function codeVersion(tags) {
  const known = Object.fromEntries(CODE_TAGS.filter((k) => k in tags).map((k) => [k.replace("mloop.", ""), tags[k]]));
  let libraries = null;
  if (tags["mloop.libraries"]) {
    let text = tags["mloop.libraries"];
    try { text = JSON.stringify(JSON.parse(text), null, 1); } catch { /* shown as stored */ }
    libraries = h("details", {}, h("summary", {}, "Libraries"), h("pre", { class: "code" }, text));
  }
  return h("div", {}, pairs(known, { empty: "no code version recorded" }), libraries);
}

function datasets(inputs) {
  return table([
    { label: "Name", cell: (i) => i.dataset.name },
    { label: "Context", cell: (i) => i.context },
    { label: "Rows", cell: (i) => (i.dataset.rows === null ? "" : String(i.dataset.rows)), class: "n" },
    { label: "Columns", cell: (i) => String(Object.keys(i.dataset.schema || {}).length), class: "n" },
    { label: "Digest", cell: (i) => h("code", { title: i.dataset.digest }, i.dataset.digest.slice(0, 12)) },
    { label: "Source", cell: (i) => i.dataset.source },
  ], inputs, { empty: "No datasets logged (run.log_input)." });
}

function lineage(run, versions, children) {
  const produced = versions.length
    ? h("ul", {}, versions.map((v) => h("li", {},
      link(`/models/${seg(v.name)}/versions/${seg(v.version)}`, `${v.name} v${v.version}`), ` ${v.status}`)))
    : h("p", { class: "muted" }, "No model version was registered from this run.");
  const kids = children.runs.length
    ? h("ul", {}, children.runs.map((c) => h("li", {}, link(`/runs/${seg(c.run_id)}`, c.name), " ", status(c.status),
      c.children ? h("span", { class: "muted" }, ` (${c.children} children)`) : null)),
    children.total > children.runs.length ? h("li", { class: "muted" }, `and ${children.total - children.runs.length}`
      + " more") : null)
    : h("p", { class: "muted" }, "No child runs.");
  return h("div", {},
    h("h3", {}, "Model versions made from it"), produced,
    h("h3", {}, `Child runs (${children.total})`), kids,
    run.parent_run_id ? h("p", {}, "Parent: ", link(`/runs/${seg(run.parent_run_id)}`, run.parent_run_id)) : null);
}
