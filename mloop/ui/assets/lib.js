// What every page shares: talking to the REST API, building elements safely, links, tables, charts, formats.
//
// Safety rule of the whole UI: user-provided text (names, tags, params, artifact contents) reaches the page only
// as text nodes or attribute values set through h(); nothing is ever assigned to innerHTML. Text handed to Plotly,
// which reads a little HTML in labels, goes through esc() first.

export const root = document.body.dataset.root || "";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
  }
}

// Identity: with auth on, a 401 calls the handler app.js sets (it sends the person to the login page, then back),
// and every change carries the session's CSRF secret, which the server hands to this server's pages only.
let unauthorized = null;
export function onUnauthorized(handler) { unauthorized = handler; }

let csrf = null;
let identity = null;
export function setSession(session) { csrf = (session && session.csrf) || null; identity = null; }

/** Who the server takes this browser for ({name, auth, is_admin, roles}); asked once per page load. */
export function me({ fresh = false } = {}) {
  if (!identity || fresh) {
    identity = api("/auth/whoami").then((found) => { if (found.csrf) csrf = found.csrf; return found; });
    identity.catch(() => { identity = null; });
  }
  return identity;
}

const RANKS = { viewer: 1, editor: 2, maintainer: 3, admin: 4 };

/** Whether ``who`` (from me()) holds ``role`` in ``project``: what the page offers, not what the API allows (the
 * API checks every request itself). */
export function may(who, role, project = "default") {
  if (!who || !who.auth || who.is_admin) return true;
  return (RANKS[who.roles[project]] || 0) >= RANKS[role];
}

/** JSON from the REST API: api("/runs/abc"), api("/runs/page", {method: "POST", body: {...}}). */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  if (method !== "GET" && csrf) init.headers["X-Mloop-CSRF"] = csrf;
  const answer = await fetch(`${root}/api${path}`, init);
  if (answer.status === 401 && unauthorized) unauthorized();
  if (!answer.ok) {
    let detail = null;
    try { detail = await answer.json(); } catch { detail = { message: answer.statusText }; }
    throw new ApiError(answer.status, detail);
  }
  return answer.json();
}

/** A part of a page that may be refused on its own (a 403 for one project's audit log, say): resolves to the
 * answer, or to the error, which ``orBox`` then shows in place of that part instead of failing the whole page. */
export function part(promise) {
  return promise.catch((error) => (error instanceof ApiError ? error : Promise.reject(error)));
}

/** ``draw(found)``, or the error box when ``found`` is the error of a refused ``part``. */
export function orBox(found, draw) {
  return found instanceof ApiError ? errorBox(found) : draw(found);
}

/** One path segment, encoded (ids, names and keys go into URLs only through this). */
export const seg = (text) => encodeURIComponent(String(text));

/** Text made safe for Plotly labels, which read a few HTML tags. A quote is written &#34;: Plotly decodes
 * numeric entities but shows &quot; as it is. */
export function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&#34;");
}

/**
 * An element: h("a", {href: "/runs/1", class: "x", onclick: fn}, "text", child, [more]).
 * Strings become text nodes; null, undefined and false are skipped; arrays are flattened.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) {
      if (typeof value !== "function") throw new Error(`${name} must be a function`);
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name === "checked" || name === "value" || name === "selected" || name === "disabled") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A link inside the UI: a real URL (shareable, opens in a new tab) that navigates without a reload. */
export function link(path, ...children) {
  return h("a", { href: root + path, "data-internal": "" }, ...children);
}

export function navigate(path, { replace = false } = {}) {
  const url = root + path;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  window.dispatchEvent(new Event("mloop:navigate"));
}

/** The page's query string as a plain object. */
export function query() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

/** Rewrite the query string in place (no new history entry): the URL always shares what is on screen. */
export function setQuery(values) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== null && value !== undefined && value !== "") params.set(key, value);
  }
  const search = params.toString();
  history.replaceState(null, "", location.pathname + (search ? `?${search}` : ""));
}

// ------------------------------------------------------------------ formats
export function num(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value; // "NaN", "Infinity" as the API sends them
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(3) : String(Number(value.toPrecision(5)));
}

export function value(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number" || typeof v === "string") return num(v);
  return JSON.stringify(v);
}

export function when(ms) {
  if (!ms) return "";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function duration(start, end) {
  if (!start || !end) return "";
  const s = (end - start) / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export const status = (text) => h("span", { class: `status status-${String(text).replace(/[^a-z]/g, "")}` }, text);

// ------------------------------------------------------------------ building blocks
export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

const REFUSED = {
  401: "You are not signed in, or your session has ended.",
  403: "You do not have access to this. Ask an admin of its project for a role (mloop auth grant).",
};

export function errorBox(error) {
  const where = error && error.field ? ` (${error.field})` : "";
  const text = `${error && error.message ? error.message : error}${where}`;
  const status = error && error.status;
  if (!REFUSED[status]) return h("div", { class: "error", role: "alert" }, text);
  return h("div", { class: `error refused status-${status}`, role: "alert", dataset: { status: String(status) } },
    h("strong", {}, REFUSED[status]), h("p", { class: "small" }, text));
}

/** A two-column table of key/value pairs ({} shows "none"). */
export function pairs(record, { empty = "none" } = {}) {
  const keys = Object.keys(record || {}).sort();
  if (!keys.length) return h("p", { class: "muted" }, empty);
  return h("table", { class: "grid pairs" },
    h("tbody", {}, keys.map((key) => h("tr", {}, h("th", {}, key), h("td", {}, value(record[key]))))));
}

/**
 * A table: columns [{label, cell(row) -> node|string, class?}], rows; an optional row hook(tr, row).
 * Cells that return strings become text.
 */
export function table(columns, rows, { hook, empty = "nothing yet", className = "" } = {}) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.header || c.label)));
  const body = rows.map((row) => {
    const tr = h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row))));
    if (hook) hook(tr, row);
    return tr;
  });
  return h("table", { class: `grid ${className}` }, h("thead", {}, head), h("tbody", {}, body));
}

// ------------------------------------------------------------------ charts (Plotly, served by this server)
export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#7f7f7f", "#bcbd22"];

const LAYOUT = {
  margin: { l: 56, r: 16, t: 36, b: 40 }, height: 280, paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "#fff", font: { size: 11 }, hovermode: "closest",
  legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
};

/** Draw (or redraw) a Plotly chart in ``element``; titles and trace names must already be esc()'d. */
export function plot(element, traces, layout = {}) {
  if (!window.Plotly) {
    element.replaceChildren(h("p", { class: "error" }, "The chart library did not load."));
    return Promise.resolve();
  }
  return window.Plotly.react(element, traces, { ...LAYOUT, ...layout },
    { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"] });
}

/** Numbers from the API's JSON floats ("NaN", "Infinity" arrive as strings). */
export function numbers(values) {
  return values.map((v) => (typeof v === "number" ? v : v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity
    : NaN));
}

/** The points of one metric between two steps (all when omitted), downsampled by the server; ``sample`` asks for
 * a quick preview of a long series (``total`` is then null). */
export function metricWindow(runId, key, { start, end, maxPoints = 1500, sample = false, signal } = {}) {
  const params = new URLSearchParams({ key, max_points: String(maxPoints) });
  if (sample) params.set("sample", "true");
  if (start !== undefined && start !== null) params.set("start", String(Math.floor(start)));
  if (end !== undefined && end !== null) params.set("end", String(Math.ceil(end)));
  return api(`/runs/${seg(runId)}/metric-window?${params}`, { signal });
}
