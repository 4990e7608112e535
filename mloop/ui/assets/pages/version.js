// One model version: what it is (flavor, signature, metrics, tags), where it came from (its run, the run's
// parameters, the data sets and feature views behind it, the flow run and step), and its data-quality reports.

import { api, h, link, num, pairs, section, seg, status, table, when } from "../lib.js";

export async function render(main, { model: name, version }) {
  const base = `/registry/models/${seg(name)}/versions/${seg(version)}`;
  const [mv, lineage] = await Promise.all([api(base), api(`${base}/lineage`)]);
  main.append(h("div", { class: "crumbs" }, link("/models", "Models"), " / ", link(`/models/${seg(name)}`, name),
    " /"), h("h1", {}, `${name} v${mv.version}`),
  h("div", { class: "facts" }, h("span", {}, status(mv.status)), h("span", {}, "flavor ", h("b", {}, mv.flavor)),
    h("span", {}, "by ", h("b", {}, mv.creator)), h("span", {}, "created ", h("b", {}, when(mv.created))),
    h("span", {}, link(`/quality/models/${seg(name)}/versions/${seg(mv.version)}`, "training data quality")),
    mv.aliases.length ? h("span", {}, "aliases ", h("b", {}, mv.aliases.map((a) => `@${a}`).join(" "))) : null),
  mv.description ? h("p", { class: "description" }, mv.description) : "");
  main.append(h("div", { class: "cards" },
    section("Metrics", pairs(mv.metrics)), section("Tags", pairs(mv.tags)),
    section("Signature", signature(mv.signature))));
  main.append(section("Lineage", lineageView(lineage)));
}

function signature(sig) {
  if (!sig || !sig.inputs) return h("p", { class: "muted" }, "no signature");
  const columns = sig.inputs.columns || sig.inputs;
  return Array.isArray(columns) ? table([
    { label: "Input", cell: (c) => c.name }, { label: "Type", cell: (c) => c.type },
    { label: "Nullable", cell: (c) => (c.nullable ? "yes" : "") },
  ], columns) : h("pre", { class: "code" }, JSON.stringify(sig, null, 1));
}

function lineageView(lineage) {
  if (!lineage.run) return h("p", { class: "muted" }, `Registered from ${lineage.source}, not from a run.`);
  const run = lineage.run;
  const chain = [h("li", {}, "Run ", link(`/runs/${seg(run.run_id)}`, run.name), " ", status(run.status),
    run.git_commit ? h("span", { class: "muted" }, ` at commit ${run.git_commit.slice(0, 10)}`) : null),
  ...run.ancestors.map((a) => h("li", {}, a.flow ? `inside flow ${a.flow} run ` : "inside run ",
    link(`/runs/${seg(a.run_id)}`, a.name)))];
  const flow = lineage.flow;
  return h("div", { class: "lineage" }, h("ul", {}, chain),
    flow ? h("p", {}, `Flow ${flow.name}, step ${flow.step || "?"}`) : null,
    h("h3", {}, "Parameters"), pairs(run.params),
    h("h3", {}, "Data sets"), table([
      { label: "Name", cell: (d) => d.name || d.dataset?.name || "" },
      { label: "Context", cell: (d) => d.context || "" },
      { label: "Rows", cell: (d) => num(d.rows ?? d.dataset?.rows), class: "n" },
      { label: "Digest", cell: (d) => h("code", {}, String(d.digest || d.dataset?.digest || "").slice(0, 12)) },
      { label: "Logged by", cell: (d) => (d.run_id ? link(`/runs/${seg(d.run_id)}`, d.run_id.slice(0, 12)) : "") },
    ], [...lineage.datasets, ...(flow ? flow.datasets : [])], { empty: "No data set was logged." }),
    h("h3", {}, "Feature views"), table([
      { label: "View", cell: (f) => `${f.project}/${f.name}` },
      { label: "Version", cell: (f) => (f.version === null ? "" : `v${f.version}`) },
      { label: "Features", cell: (f) => f.features.join(", ") },
    ], lineage.feature_views, { empty: "No feature view behind these data sets." }));
}
