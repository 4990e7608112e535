// The runs of one experiment as a table: params, latest metrics and tags as columns (a chooser picks them), sorted
// and filtered on the server with the SDK's filter language, paged on the server. Without a filter, child runs
// fold under their parent (a flow's tasks under the flow run, a task's runs under the task); with a filter every
// matching run is listed, and a child names its parent. Everything on screen is in the URL.

import { ApiError, api, duration, errorBox, h, link, navigate, query, seg, setQuery, status, value, when }
  from "../lib.js";

const PAGE = 50;
const ORDER_DEFAULT = "attributes.start_time DESC";

/** A column reference the filter language reads: metrics.rmse, or metrics.`odd key` when the key needs quotes. */
export function ref(kind, key) {
  return `${kind}.${/^[A-Za-z0-9_\-/:.]+$/.test(key) ? key : `\`${key}\``}`;
}

function splitColumn(column) {
  const dot = column.indexOf(".");
  return [column.slice(0, dot), column.slice(dot + 1)];
}

export async function render(main, { experiment }) {
  const q = query();
  const state = {
    experiment, filter: q.filter || "", order: q.order || ORDER_DEFAULT, offset: Number(q.offset) || 0,
    columns: q.cols ? q.cols.split(",").map(decodeURIComponent).filter((c) => c.includes(".")) : null,
    selected: new Set(), keys: { params: [], metrics: [], tags: [] },
  };
  const info = await api(`/experiments/${seg(experiment)}`);
  const parts = {
    error: h("div"), chooser: h("div", { class: "chooser-box" }), pager: h("div", { class: "pager" }),
    table: h("div", { class: "table-box" }), note: h("p", { class: "muted note" }),
    compare: h("button", { type: "button", class: "primary", disabled: true, onclick: () => compare(state) },
      "Compare selected"),
  };
  const input = h("input", { type: "search", name: "filter", value: state.filter, spellcheck: "false",
    placeholder: "metrics.rmse < 4 and (params.model = 'ridge' or tags.team = 'eta')", "aria-label": "Filter" });
  const form = h("form", { class: "filter", onsubmit: (event) => {
    event.preventDefault();
    state.filter = input.value.trim();
    state.offset = 0;
    load(state, parts);
  } }, input, h("button", { type: "submit" }, "Filter"));
  main.append(
    h("div", { class: "crumbs" }, link("/", "Experiments"), " / "),
    h("h1", {}, info.name),
    form, parts.error,
    h("div", { class: "toolbar" }, parts.chooser, parts.compare, parts.pager),
    parts.note, parts.table);
  await load(state, parts);
}

async function load(state, parts) {
  share(state);
  parts.error.replaceChildren();
  let page;
  try {
    page = await fetchPage(state, { roots_only: !state.filter });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    parts.error.replaceChildren(errorBox(error));
    parts.table.replaceChildren();
    parts.pager.replaceChildren();
    return;
  }
  state.keys = page.columns.params ? page.columns : { params: [], metrics: [], tags: [] };
  if (!state.columns) state.columns = defaultColumns(state.keys);
  state.page = page;
  parts.note.textContent = state.filter
    ? "Every run that matches is listed, children included; a child run names its parent."
    : "Child runs fold under their parent (open one with its arrow); a run whose parent is elsewhere names it.";
  drawPager(state, parts);
  drawChooser(state, parts);
  drawTable(state, parts);
}

function fetchPage(state, extra) {
  return api("/runs/page", { method: "POST", body: {
    experiment_ids: [state.experiment], filter: state.filter, order_by: [state.order], offset: state.offset,
    limit: PAGE, ...extra } });
}

function share(state) {
  setQuery({ filter: state.filter, order: state.order === ORDER_DEFAULT ? "" : state.order,
    offset: state.offset || "", cols: state.columns ? state.columns.map(encodeURIComponent).join(",") : "" });
}

function defaultColumns(keys) {
  const metrics = keys.metrics.filter((k) => !k.startsWith("system/")).slice(0, 8);
  return [...keys.params.slice(0, 6).map((k) => `params.${k}`), ...metrics.map((k) => `metrics.${k}`)];
}

function drawPager(state, parts) {
  const { total, runs } = state.page;
  const first = total ? state.offset + 1 : 0;
  const move = (offset) => () => { state.offset = offset; load(state, parts); };
  parts.pager.replaceChildren(
    h("button", { type: "button", disabled: state.offset === 0, onclick: move(Math.max(0, state.offset - PAGE)) },
      "Previous"),
    h("span", { class: "count" }, `${first}-${state.offset + runs.length} of ${total} ${state.filter ? "matching " : ""}`
      + `${state.filter ? "runs" : "top-level runs"}`),
    h("button", { type: "button", disabled: state.offset + PAGE >= total, onclick: move(state.offset + PAGE) },
      "Next"));
}

function drawChooser(state, parts) {
  const chosen = new Set(state.columns);
  const group = (kind) => h("fieldset", {}, h("legend", {}, kind),
    state.keys[kind].length ? state.keys[kind].map((key) => {
      const column = `${kind}.${key}`;
      return h("label", {}, h("input", { type: "checkbox", value: column, checked: chosen.has(column),
        onchange: (event) => {
          state.columns = event.target.checked ? [...state.columns, column] : state.columns.filter((c) => c !== column);
          share(state);
          drawTable(state, parts);
        } }), ` ${key}`);
    }) : h("span", { class: "muted" }, "none"));
  parts.chooser.replaceChildren(h("details", { class: "chooser" },
    h("summary", {}, `Columns (${state.columns.length})`),
    h("div", { class: "groups" }, group("params"), group("metrics"), group("tags"))));
}

function drawTable(state, parts) {
  const header = h("tr", {},
    h("th", { class: "pick" }), h("th", { class: "fold-col" }),
    sortable(state, parts, "Name", "attributes.name"), sortable(state, parts, "Status", "attributes.status"),
    sortable(state, parts, "Started", "attributes.start_time"), h("th", {}, "Duration"),
    state.columns.map((column) => {
      const [kind, key] = splitColumn(column);
      return sortable(state, parts, key, ref(kind, key), column, kind);
    }));
  const body = h("tbody");
  for (const run of state.page.runs) body.append(row(state, parts, run, 0));
  parts.table.replaceChildren(state.page.runs.length
    ? h("table", { class: "grid runs" }, h("thead", {}, header), body)
    : h("p", { class: "muted" }, "No runs match."));
}

function sortable(state, parts, label, order, column = "", kind = "") {
  const [current, direction] = state.order.split(/\s+(?=ASC$|DESC$)/i);
  const active = current === order;
  const arrow = active ? (/desc/i.test(direction || "") ? " \u25BC" : " \u25B2") : "";
  return h("th", { class: `sortable ${kind}`, "data-col": column || order, title: `Sort by ${order}`,
    onclick: () => {
      state.order = active && !/desc/i.test(direction || "") ? `${order} DESC` : `${order} ASC`;
      state.offset = 0;
      load(state, parts);
    } }, kind ? h("span", { class: "kind" }, kind === "metrics" ? "metric " : kind === "params" ? "param " : "tag ")
    : null, label, arrow);
}

function row(state, parts, run, depth) {
  const pick = h("input", { type: "checkbox", "aria-label": `Select ${run.name}`, checked: state.selected.has(run.run_id),
    onchange: (event) => {
      if (event.target.checked) state.selected.add(run.run_id);
      else state.selected.delete(run.run_id);
      parts.compare.disabled = state.selected.size < 2;
      parts.compare.textContent = `Compare selected (${state.selected.size})`;
    } });
  const tr = h("tr", { dataset: { run: run.run_id, depth: String(depth) } });
  const fold = run.children && !state.filter
    ? h("button", { type: "button", class: "fold", "aria-expanded": "false", title: `${run.children} child runs`,
      onclick: () => toggle(state, parts, tr, run, depth, fold) }, `\u25B8 ${run.children}`)
    : null;
  const parent = (state.filter || depth === 0) && run.parent_run_id
    ? h("div", { class: "muted small" }, "child of ", link(`/runs/${seg(run.parent_run_id)}`,
      run.parent_run_id.slice(0, 8)))
    : null;
  tr.append(h("td", { class: "pick" }, pick), h("td", { class: "fold-col" }, fold),
    h("td", { class: "name", style: `padding-left:${0.5 + depth * 1.4}rem` },
      link(`/runs/${seg(run.run_id)}`, run.name), parent),
    h("td", {}, status(run.status)), h("td", { class: "time" }, when(run.start_time)),
    h("td", { class: "n" }, duration(run.start_time, run.end_time)),
    ...state.columns.map((column) => {
      const [kind, key] = splitColumn(column);
      const cell = run[kind] ? run[kind][key] : undefined;
      return h("td", { class: typeof cell === "number" ? "n" : "" }, value(cell));
    }));
  return tr;
}

async function toggle(state, parts, tr, run, depth, button) {
  const open = button.getAttribute("aria-expanded") === "true";
  if (open) {
    let next = tr.nextElementSibling;
    while (next && Number(next.dataset.depth) > depth) {
      const after = next.nextElementSibling;
      next.remove();
      next = after;
    }
    button.setAttribute("aria-expanded", "false");
    button.textContent = `\u25B8 ${run.children}`;
    return;
  }
  button.disabled = true;
  const page = await api("/runs/page", { method: "POST", body: {
    // children in the order they ran (a flow's tasks from start to end) unless a column is sorted
    order_by: [state.order === ORDER_DEFAULT ? "attributes.start_time ASC" : state.order], parent_run_id: run.run_id,
    limit: 1000, with_columns: false } });
  let after = tr;
  for (const child of page.runs) {
    const childRow = row(state, parts, child, depth + 1);
    after.after(childRow);
    after = childRow;
  }
  button.disabled = false;
  button.setAttribute("aria-expanded", "true");
  button.textContent = `\u25BE ${run.children}`;
}

function compare(state) {
  navigate(`/compare?runs=${[...state.selected].map(encodeURIComponent).join(",")}`);
}
