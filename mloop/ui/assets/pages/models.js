// The model registry: registered models (searched by name, description or tag as you type), the approvals
// waiting for a decision, and the latest entries of the audit log.

import { api, h, link, may, me, orBox, part, query, section, seg, setQuery, table, when } from "../lib.js";
import { approvals, auditLog } from "./approvals.js";

export async function render(main) {
  const [models, pending, audit, who] = await Promise.all([
    api("/registry/models"), part(api("/registry/approvals")), part(api("/registry/audit?limit=50")), me()]);
  const projects = new Map(models.map((m) => [m.name, m.tags.project || "default"]));
  const canDecide = (r) => may(who, "maintainer", projects.get(r.name) || "default");
  const box = h("div", { class: "table-box" });
  const search = h("input", { type: "search", name: "q", placeholder: "Search name, description, tag",
    value: query().q || "", oninput: () => draw() });
  const draw = () => {
    const words = search.value.trim().toLowerCase();
    setQuery({ q: words });
    const hit = (m) => !words || [m.name, m.description, ...Object.entries(m.tags).map(([k, v]) => `${k}=${v}`)]
      .some((text) => String(text).toLowerCase().includes(words));
    box.replaceChildren(table([
      { label: "Name", cell: (m) => link(`/models/${seg(m.name)}`, m.name) },
      { label: "Latest", cell: (m) => (m.latest_version ? link(`/models/${seg(m.name)}/versions/${m.latest_version}`,
        `v${m.latest_version}`) : ""), class: "n" },
      { label: "Aliases", cell: (m) => Object.entries(m.aliases).map(([a, v]) => h("span", { class: "tag" },
        `@${a} → v${v}`)) },
      { label: "Owner", cell: (m) => m.owner },
      { label: "Updated", cell: (m) => when(m.updated) },
      { label: "Description", cell: (m) => m.description },
      { label: "Tags", cell: (m) => Object.entries(m.tags).map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`)) },
    ], models.filter(hit), { empty: words ? "No model matches." : "No registered models yet: run.log_model(...).",
      className: "models" }));
  };
  draw();
  main.append(h("h1", {}, "Models"), h("form", { class: "filter", onsubmit: (e) => e.preventDefault() }, search),
    box, section("Pending approvals", orBox(pending, (found) => approvals(found, { canDecide }))),
    section("Audit log", orBox(audit, auditLog)));
}
