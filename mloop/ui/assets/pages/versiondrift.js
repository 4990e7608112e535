// Drift of a run's data against a model version's training profile: pick a run (those of the version's own
// experiment are offered; any run id can be typed) and its logged data set; the page shows each column's verdict
// and the full HTML report of mloop.drift in a sandboxed frame (its scripts cannot reach this page or the server).

import { api, errorBox, h, num, query, root, section, seg, setQuery, status, table } from "../lib.js";

const OFFERED_RUNS = 100;

/** Append the drift section of ``model`` v``version`` to ``main``; draws the report named in the URL, if any. */
export async function driftSection(main, model, version) {
  const base = `/quality/models/${seg(model)}/versions/${seg(version)}`;
  const mv = await api(`/registry/models/${seg(model)}/versions/${seg(version)}`);
  const runs = await offeredRuns(mv.run_id);
  const asked = query();
  const run = h("input", { type: "text", name: "run", list: "drift-runs", placeholder: "run id", size: 36,
    value: asked.against || "", required: true, pattern: "[A-Za-z0-9_\\-]{1,64}" });
  const choices = h("datalist", { id: "drift-runs" }, runs.map((r) => h("option", { value: r.run_id },
    `${r.name || ""} (${r.run_id.slice(0, 8)})`)));
  const dataset = h("input", { type: "text", name: "dataset", value: asked.dataset || "train", size: 10,
    pattern: "[A-Za-z0-9_.\\-]{1,128}" });
  const result = h("div", { class: "drift-result" });
  const draw = async () => {
    setQuery({ ...query(), against: run.value.trim(), dataset: dataset.value.trim() });
    await report(result, base, run.value.trim(), dataset.value.trim() || "train");
  };
  main.append(section("Drift against a run's data",
    h("p", { class: "muted small" }, "Reference: this version's training profile. Current: the profile a run "
      + "logged for a data set (log_dataset(run, data, name=...)); runs of the version's experiment are offered."),
    h("form", { class: "filter drift-form", onsubmit: (e) => { e.preventDefault(); draw(); } },
      h("label", {}, "Run ", run, choices), h("label", {}, "Data set ", dataset),
      h("button", { type: "submit", class: "primary" }, "Measure drift")),
    result));
  if (asked.against) await draw();
}

async function offeredRuns(runId) {
  if (!runId) return [];
  try {
    const run = await api(`/runs/${seg(runId)}`);
    const page = await api("/runs/page", { method: "POST", body: { experiment_ids: [String(run.experiment_id)],
      limit: OFFERED_RUNS, with_columns: false } });
    return page.runs || [];
  } catch {
    return []; // the run or its experiment may not be visible to this person: any run id can still be typed
  }
}

async function report(result, base, runId, dataset) {
  result.dataset.state = "loading";
  result.replaceChildren(h("p", { class: "muted" }, "Measuring..."));
  const params = new URLSearchParams({ run: runId, dataset });
  try {
    const found = await api(`${base}/drift?${params}`);
    result.replaceChildren(
      h("p", { class: `verdict ${found.dataset_drift ? "bad" : found.drifted_columns.length ? "warn" : "good"}` },
        `${found.dataset_drift ? "Dataset drift" : found.drifted_columns.length ? "Some columns drifted"
          : "No drift"}: ${found.drifted_columns.length} of ${found.columns.length} columns `
        + `(${Math.round(100 * found.drift_share)}%; threshold ${Math.round(100 * found.share_threshold)}%). `
        + `Training ${found.n_reference} rows, run ${found.n_current} rows.`),
      found.left_out.length ? h("p", { class: "muted small" },
        `Not in the run's data, left out: ${found.left_out.join(", ")}`) : null,
      table([
        { label: "Column", cell: (c) => c.column },
        { label: "Type", cell: (c) => c.kind },
        { label: "Method", cell: (c) => c.method },
        { label: "Statistic", cell: (c) => num(c.statistic), class: "n" },
        { label: "p-value", cell: (c) => num(c.p_value), class: "n" },
        { label: "Effect", cell: (c) => num(c.effect_size), class: "n" },
        { label: "Threshold", cell: (c) => num(c.threshold), class: "n" },
        { label: "Verdict", cell: (c) => status(c.drifted ? "drifted" : "stable") },
      ], found.columns, { className: "drift", hook: (tr, c) => { tr.dataset.column = c.column; } }),
      h("h3", {}, "Report"),
      h("iframe", { class: "report", sandbox: "allow-scripts", referrerpolicy: "no-referrer",
        title: "drift report", src: `${root}/api${base}/drift.html?${params}` }));
  } catch (error) {
    result.replaceChildren(errorBox(error));
  }
  result.dataset.state = "ready";
}
