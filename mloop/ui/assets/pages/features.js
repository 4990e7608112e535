// The feature store: the catalog (searched by name or description, tag and entity; the search is the URL), and
// one definition: its spec, its versions, and for a feature view how fresh its online data is and the
// statistics of its last materialization.

import { api, h, link, num, pairs, query, section, seg, setQuery, table, value, when } from "../lib.js";

export async function render(main, { name }) {
  return name === undefined ? catalog(main) : definition(main, name);
}

async function catalog(main) {
  const asked = query();
  const field = (key, placeholder) => h("input", { type: "search", name: key, placeholder, value: asked[key] || "" });
  const inputs = [field("search", "name or description"), field("tag", "tag key or key=value"),
    field("entity", "entity")];
  const box = h("div", { class: "table-box" });
  const draw = async () => {
    const values = Object.fromEntries(inputs.map((i) => [i.name, i.value.trim()]));
    setQuery(values);
    const params = new URLSearchParams(Object.entries(values).filter(([, v]) => v));
    const found = await api(`/features/definitions?${params}`);
    box.replaceChildren(table([
      { label: "Name", cell: (d) => link(`/features/${seg(d.name)}`, d.name) },
      { label: "Kind", cell: (d) => d.kind.replace(/_/g, " ") },
      { label: "Version", cell: (d) => `v${d.version}`, class: "n" },
      { label: "Entities", cell: (d) => (d.spec.entities || []).join(", ") },
      { label: "Features", cell: (d) => String((d.spec.schema || d.spec.features || []).length), class: "n" },
      { label: "Description", cell: (d) => d.spec.description || "" },
      { label: "Tags", cell: (d) => Object.entries(d.spec.tags || {}).map(([k, v]) => h("span", { class: "tag" },
        `${k}=${v}`)) },
      { label: "Created", cell: (d) => when(d.created) },
    ], found, { className: "definitions", empty: params.toString() ? "Nothing matches."
      : "No definitions yet: store.apply() a feature repository." }));
  };
  const form = h("form", { class: "filter", onsubmit: (event) => { event.preventDefault(); draw(); } }, inputs,
    h("button", { type: "submit", class: "primary" }, "Search"));
  main.append(h("h1", {}, "Features"), form, box);
  await draw();
}

async function definition(main, name) {
  const version = query().version;
  const found = await api(`/features/definitions/${seg(name)}${version ? `?version=${encodeURIComponent(version)}` : ""}`);
  const spec = found.spec;
  main.append(h("div", { class: "crumbs" }, link("/features", "Features"), " /"), h("h1", {}, found.name),
    h("div", { class: "facts" }, h("span", {}, found.kind.replace(/_/g, " ")),
      h("span", {}, "version ", h("b", {}, `v${found.version}`)), h("span", {}, "by ", h("b", {}, found.creator)),
      h("span", {}, "created ", h("b", {}, when(found.created))),
      h("span", { class: "versions" }, "versions ", found.versions.map((v) => [link(
        `/features/${seg(name)}?version=${v}`, `v${v}`), " "]))),
    spec.description ? h("p", { class: "description" }, spec.description) : "");
  if (found.kind === "feature_view") main.append(section("Online data", freshness(found)));
  const rest = Object.fromEntries(Object.entries(spec).filter(([k]) => !["schema", "name", "description"].includes(k)));
  main.append(h("div", { class: "cards" },
    spec.schema ? section("Features", table([
      { label: "Feature", cell: (f) => f.name }, { label: "Type", cell: (f) => f.dtype },
      { label: "Description", cell: (f) => f.description || "" }], spec.schema)) : null,
    section("Definition", pairs(rest))));
}

function freshness(found) {
  const mark = found.watermark ? Date.parse(found.watermark) : null;
  const age = mark ? (Date.now() - mark) / 3600e3 : null;
  const stale = age !== null && found.spec.ttl_seconds && age * 3600 > found.spec.ttl_seconds;
  return h("div", {}, h("p", { class: stale ? "error" : "" }, mark
    ? `Materialized up to ${when(mark)} (${age < 48 ? `${age.toFixed(1)} h` : `${(age / 24).toFixed(1)} days`} ago)`
      + (stale ? ": older than the view's time to live." : ".")
    : "Never materialized: mloop features materialize."),
  table([
    { label: "Feature", cell: (s) => s.feature }, { label: "Rows", cell: (s) => num(s.count), class: "n" },
    { label: "Missing", cell: (s) => (s.count ? `${((100 * s.nulls) / s.count).toFixed(1)}%` : ""), class: "n" },
    { label: "Min", cell: (s) => extreme(s.min), class: "n" }, { label: "Mean", cell: (s) => num(s.mean), class: "n" },
    { label: "Max", cell: (s) => extreme(s.max), class: "n" },
    { label: "Distinct", cell: (s) => num(s.distinct), class: "n" },
  ], found.statistics || [], { className: "statistics", empty: "No statistics: the view was not materialized." }));
}

// the store keeps extremes as text (they may be dates or strings): numbers are shown as numbers
function extreme(text) {
  const n = Number(text);
  return text !== null && text !== "" && Number.isFinite(n) ? num(n) : value(text);
}
