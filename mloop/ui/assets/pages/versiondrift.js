// Drift against a model version's training profile, of a run's logged data set (those of the version's own
// experiment are offered; any run id can be typed) or of recent traffic (a monitor's latest windows); the page
// shows each column's verdict and the full HTML report of mloop.drift in a sandboxed frame (its scripts cannot
// reach this page or the server).

import { api, errorBox, h, num, query, root, section, seg, setQuery, status, table, when } from "../lib.js";

const OFFERED_RUNS = 100;

/** Append the drift section of ``model`` v``version`` to ``main``; draws the report named in the URL, if any. */
export async function driftSection(main, model, version) {
  const base = `/quality/models/${seg(model)}/versions/${seg(version)}`;
  const mv = await api(`/registry/models/${seg(model)}/versions/${seg(version)}`);
  const [runs, monitors] = await Promise.all([offeredRuns(mv.run_id), api("/monitors").catch(() => [])]);
  const mine = monitors.filter((m) => m.model === model);
  const asked = query();
  const source = h("select", { name: "source", onchange: () => sync() },
    h("option", { value: "" }, "a run's data set"),
    mine.map((m) => h("option", { value: m.name, selected: asked.monitor === m.name },
      `recent traffic: monitor ${m.name}`)));
  const run = h("input", { type: "text", name: "run", list: "drift-runs", placeholder: "run id", size: 36,
    value: asked.against || "", pattern: "[A-Za-z0-9_\\-]{1,64}" });
  const choices = h("datalist", { id: "drift-runs" }, runs.map((r) => h("option", { value: r.run_id },
    `${r.name || ""} (${r.run_id.slice(0, 8)})`)));
  const dataset = h("input", { type: "text", name: "dataset", value: asked.dataset || "train", size: 10,
    pattern: "[A-Za-z0-9_.\\-]{1,128}" });
  const windows = h("input", { type: "number", name: "windows", min: "1", max: "1000",
    value: asked.windows || "12" });
  const runFields = h("span", { class: "fields" }, h("label", {}, "Run ", run, choices),
    h("label", {}, "Data set ", dataset));
  const windowFields = h("span", { class: "fields" }, h("label", {}, "Last ", windows, " windows"));
  const sync = () => {
    runFields.hidden = Boolean(source.value);
    windowFields.hidden = !source.value;
  };
  const result = h("div", { class: "drift-result" });
  const draw = async () => {
    const params = source.value
      ? { monitor: source.value, windows: windows.value || "12" }
      : { run: run.value.trim(), dataset: dataset.value.trim() || "train" };
    const { monitor: _m, windows: _w, against: _a, dataset: _d, ...kept } = query();
    setQuery({ ...kept, ...(params.run ? { against: params.run, dataset: params.dataset } : params) });
    await report(result, base, params);
  };
  sync();
  main.append(section("Drift against the training data",
    h("p", { class: "muted small" }, "Reference: this version's training profile. Current: the profile a run "
      + "logged for a data set (log_dataset(run, data, name=...); runs of the version's experiment are offered), "
      + "or the version's recent traffic as a monitor of this model saw it (its latest windows, merged)."),
    h("form", { class: "filter drift-form", onsubmit: (e) => { e.preventDefault(); draw(); } },
      h("label", {}, "Compare with ", source), runFields, windowFields,
      h("button", { type: "submit", class: "primary" }, "Measure drift")),
    result));
  if (asked.against || asked.monitor) await draw();
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

async function report(result, base, asked) {
  result.dataset.state = "loading";
  result.replaceChildren(h("p", { class: "muted" }, "Measuring..."));
  const params = new URLSearchParams(asked);
  try {
    const found = await api(`${base}/drift?${params}`);
    result.replaceChildren(
      h("p", { class: `verdict ${found.dataset_drift ? "bad" : found.drifted_columns.length ? "warn" : "good"}` },
        `${found.dataset_drift ? "Dataset drift" : found.drifted_columns.length ? "Some columns drifted"
          : "No drift"}: ${found.drifted_columns.length} of ${found.columns.length} columns `
        + `(${Math.round(100 * found.drift_share)}%; threshold ${Math.round(100 * found.share_threshold)}%). `
        + `Training ${found.n_reference} rows, ${found.monitor ? `${found.windows} windows from `
          + `${when(found.first)}` : "the run"}: ${found.n_current} rows.`),
      found.left_out.length ? h("p", { class: "muted small left-out" },
        `Not in the current data, left out: ${found.left_out.join(", ")}`) : "",
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
