// Data quality of a run's data set or of a model version's training data: the schema (types, nulls allowed,
// ranges, categories) beside the profile (rows, missing share, mean and spread, a histogram per column).

import { api, esc, h, link, num, plot, section, seg, table } from "../lib.js";
import { driftSection } from "./versiondrift.js";

const MAX_CHARTS = 40;

export async function render(main, { run, model, version }) {
  const source = run !== undefined
    ? { path: `/quality/runs/${seg(run)}`, title: `Data quality of run ${run.slice(0, 12)}`,
      back: link(`/runs/${seg(run)}`, "the run") }
    : { path: `/quality/models/${seg(model)}/versions/${seg(version)}`, title: `Training data of ${model} v${version}`,
      back: link(`/models/${seg(model)}/versions/${seg(version)}`, `${model} v${version}`) };
  const found = await api(source.path);
  main.append(h("div", { class: "crumbs" }, "Data quality / ", source.back), h("h1", {}, source.title));
  if (!found.schema && !found.profile) {
    main.append(h("p", { class: "muted" }, "No schema or profile was logged: log_dataset(run, train) in the run, "
      + "or attach_to_model_version(name, version, data=train)."));
    return;
  }
  const columns = [...new Set([...Object.keys(found.schema?.columns || {}),
    ...Object.keys(found.profile?.columns || {})])];
  main.append(section("Columns", h("div", { class: "table-box" }, table([
    { label: "Column", cell: (c) => c },
    { label: "Type", cell: (c) => found.schema?.columns[c]?.type || found.profile?.columns[c]?.kind || "" },
    { label: "Nulls allowed", cell: (c) => rule(found.schema?.columns[c]) },
    { label: "Missing", cell: (c) => missing(found.profile?.columns[c]), class: "n" },
    { label: "Mean", cell: (c) => stat(found.profile?.columns[c], "mean"), class: "n" },
    { label: "Std", cell: (c) => stat(found.profile?.columns[c], "std"), class: "n" },
    { label: "Min", cell: (c) => num(found.profile?.columns[c]?.min), class: "n" },
    { label: "Max", cell: (c) => num(found.profile?.columns[c]?.max), class: "n" },
    { label: "Allowed", cell: (c) => allowed(found.schema?.columns[c]) },
  ], columns, { className: "quality" })),
  found.profile ? h("p", { class: "muted" }, `${found.profile.rows} rows profiled.`) : null));
  if (found.profile && run === undefined) await driftSection(main, model, version);
  if (found.profile) await histograms(main, found.profile);
}

function rule(column) {
  if (!column) return "";
  return column.nullable === false ? "no" : column.max_null_share !== undefined ? `up to ${num(column.max_null_share)}`
    : "yes";
}

function missing(profile) {
  if (!profile) return "";
  const total = profile.count + profile.nulls;
  return total ? `${((100 * profile.nulls) / total).toFixed(1)}%` : "";
}

function stat(profile, which) {
  if (!profile || profile.kind !== "numeric" || !profile.count) return "";
  const mean = profile.sum / profile.count;
  return num(which === "mean" ? mean : Math.sqrt(Math.max(0, profile.sumsq / profile.count - mean * mean)));
}

function allowed(column) {
  if (!column) return "";
  if (column.categories) return column.categories.slice(0, 12).join(", ") + (column.categories.length > 12 ? ", …" : "");
  const bounds = [column.min !== undefined ? `≥ ${num(column.min)}` : null,
    column.max !== undefined ? `≤ ${num(column.max)}` : null].filter(Boolean);
  return bounds.join(", ") || (column.pattern ? `matches ${column.pattern}` : "");
}

async function histograms(main, profile) {
  const grid = h("div", { class: "charts" });
  const names = Object.keys(profile.columns).slice(0, MAX_CHARTS);
  main.append(section("Distributions", grid));
  const elements = names.map((name) => {
    const element = h("div", { class: "chart", dataset: { key: name } });
    grid.append(h("div", {}, element));
    return element;
  });
  await Promise.all(names.map((name, i) => {
    const column = profile.columns[name];
    const [x, y] = column.kind === "numeric" ? bins(column) : top(column);
    return plot(elements[i], [{ type: "bar", x, y, marker: { color: "#4c72b0" } }],
      { title: { text: esc(name), x: 0.02, font: { size: 13 } }, bargap: column.kind === "numeric" ? 0 : 0.2,
        xaxis: column.kind === "numeric" ? {} : { type: "category" }, height: 240 });
  }));
}

/** The profile's fine bins merged into about 30 (the ones beyond the outer edges are left to min and max). */
function bins(column) {
  const e = column.edges;
  const inner = column.counts.slice(1, -1);
  const width = Math.max(1, Math.ceil(inner.length / 30));
  const x = [];
  const y = [];
  for (let i = 0; i < inner.length; i += width) {
    const end = Math.min(i + width, inner.length);
    x.push((e[i] + e[end]) / 2);
    y.push(inner.slice(i, end).reduce((a, b) => a + b, 0));
  }
  return [x, y];
}

function top(column) {
  const pairs = [...column.freq].sort((a, b) => b[1] - a[1]).slice(0, 30);
  return [pairs.map(([k]) => esc(k)), pairs.map(([, v]) => v)];
}
