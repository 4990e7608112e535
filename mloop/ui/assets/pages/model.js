// One registered model: its versions with their run's metrics, aliases, where each environment runs it, the
// approvals waiting for it, and its audit log.

import { api, h, link, may, me, num, orBox, pairs, part, section, seg, status, table, when } from "../lib.js";
import { approvals, auditLog } from "./approvals.js";

const MAX_METRIC_COLUMNS = 8;

export async function render(main, { model: name }) {
  const [model, versions, environments, pending, audit, who] = await Promise.all([
    api(`/registry/models/${seg(name)}`), api(`/registry/models/${seg(name)}/versions`),
    part(api("/registry/environments")), part(api(`/registry/approvals?model=${encodeURIComponent(name)}`)),
    part(api(`/registry/audit?model=${encodeURIComponent(name)}&limit=100`)), me()]);
  const canDecide = () => may(who, "maintainer", model.tags.project || "default");
  const metrics = [...new Set(versions.flatMap((v) => Object.keys(v.metrics)))].sort().slice(0, MAX_METRIC_COLUMNS);
  const deployed = (v) => (Array.isArray(environments) ? environments : []).filter((e) => e.models[name] === v.version).map((e) => e.env);
  main.append(h("div", { class: "crumbs" }, link("/models", "Models"), " /"), h("h1", {}, model.name),
    model.description ? h("p", { class: "description" }, model.description) : "",
    h("div", { class: "facts" }, h("span", {}, "owner ", h("b", {}, model.owner)),
      h("span", {}, "updated ", h("b", {}, when(model.updated))),
      h("span", {}, link(`/models/${seg(name)}/automation`, "automation timeline"))));
  main.append(section("Versions", h("div", { class: "table-box" }, table([
    { label: "Version", cell: (v) => link(`/models/${seg(name)}/versions/${v.version}`, `v${v.version}`) },
    { label: "Status", cell: (v) => status(v.status) },
    { label: "Aliases", cell: (v) => v.aliases.map((a) => h("span", { class: "tag" }, `@${a}`)) },
    { label: "Deployed in", cell: (v) => deployed(v).map((e) => h("span", { class: "tag env" }, e)) },
    ...metrics.map((m) => ({ label: m, cell: (v) => num(v.metrics[m]), class: "n" })),
    { label: "Run", cell: (v) => (v.run_id ? link(`/runs/${seg(v.run_id)}`, v.run_id.slice(0, 12)) : v.source) },
    { label: "Flavor", cell: (v) => v.flavor },
    { label: "Created", cell: (v) => when(v.created) },
  ], [...versions].reverse(), { className: "versions", empty: "No versions yet." }))));
  main.append(h("div", { class: "cards" },
    section("Aliases", pairs(Object.fromEntries(Object.entries(model.aliases).map(([a, v]) => [`@${a}`, `v${v}`])),
      { empty: "no aliases" })),
    section("Environments", orBox(environments, (found) => table([
      { label: "Environment", cell: (e) => e.env },
      { label: "Runs", cell: (e) => (e.models[name] ? `v${e.models[name]}` : "—") },
      { label: "Approval", cell: (e) => (e.requires_approval ? "required" : "") },
    ], found, { empty: "No environments: mloop models env create ENV." }))),
    section("Tags", pairs(model.tags))));
  main.append(section("Pending approvals", orBox(pending, (found) => approvals(found, { canDecide }))),
    section("Audit log", orBox(audit, auditLog)));
}
