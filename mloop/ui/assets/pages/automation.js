// Automation timeline: every firing of the continuous-training rules (of one model, or of all), newest first:
// the event that triggered it, the rule and its version, each action with its result and time, and the lineage
// to what it produced (the flow run that retrained, the challenger the gate judged, the version promoted).
// Each rule can be fired by hand (an editor of the model's project) and paused or resumed (a maintainer); the
// buttons are offered by role, and the API checks every request anyway.

import { api, errorBox, h, link, may, me, navigate, part, root, section, seg, status, table, value, when }
  from "../lib.js";

const LIMIT = 200;

export async function render(main, { model }) {
  const params = new URLSearchParams({ limit: String(LIMIT) });
  if (model !== undefined) params.set("model", model);
  const [firings, rules, models, who] = await Promise.all([api(`/automation/firings?${params}`),
    api("/automation/rules"), part(api("/registry/models")), me()]);
  const mine = model === undefined ? rules : rules.filter((r) => r.model === model);
  const projects = new Map((Array.isArray(models) ? models : []).map((m) => [m.name, m.tags.project || "default"]));
  const can = (role, rule) => may(who, role, projects.get(rule.model) || "default");
  main.append(...(model === undefined
    ? [h("h1", {}, "Automation")]
    : [h("div", { class: "crumbs" }, link("/models", "Models"), " / ", link(`/models/${seg(model)}`, model), " /"),
      h("h1", {}, `Automation of ${model}`)]));
  main.append(section("Rules", table([
    { label: "Rule", cell: (r) => r.name },
    { label: "Version", cell: (r) => `v${r.version}`, class: "n" },
    { label: "Model", cell: (r) => link(`/models/${seg(r.model)}/automation`, r.model) },
    { label: "Trigger", cell: (r) => r.trigger?.kind || String(r.trigger || "") },
    { label: "When", cell: (r) => (r.when ? h("code", {}, r.when) : h("span", { class: "muted" }, "always")) },
    { label: "Actions", cell: (r) => (r.actions || []).join(" → ") },
    { label: "State", cell: (r) => (r.paused ? status("paused") : status("active")) },
    { label: "", cell: (r) => controls(r, can) },
  ], mine, { className: "rules", empty: "No rules: mloop automation apply rules.yaml.",
    hook: (tr, r) => { tr.dataset.rule = r.name; } })));
  const list = h("ol", { class: "timeline" }, firings.map(firingItem));
  main.append(section(`Firings (newest first${firings.length >= LIMIT ? `, the last ${LIMIT}` : ""})`,
    firings.length ? list : h("p", { class: "muted" }, "Nothing has fired yet.")));
}

/** Fire now (recorded at once; the runtime runs it) and pause/resume, for those whose role allows them. */
function controls(rule, can) {
  const outcome = h("div", { class: "outcome" });
  const act = (path, body) => async (event) => {
    const buttons = event.target.parentElement.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await api(`/automation/rules/${seg(rule.name)}/${path}`, { method: "POST", body });
      navigate(location.pathname.slice(root.length) + location.search, { replace: true });
    } catch (error) {
      outcome.replaceChildren(errorBox(error));
      buttons.forEach((b) => { b.disabled = false; });
    }
  };
  const buttons = [];
  if (can("editor", rule) && !rule.paused) {
    // one id per click: a retried request (a proxy's retry, say) records one firing
    buttons.push(h("button", { class: "primary fire", type: "button",
      onclick: (event) => act("fire", { request_id: randomId(), payload: { from: "web UI" } })(event) },
    "Fire now"));
  }
  if (can("maintainer", rule)) {
    buttons.push(rule.paused
      ? h("button", { class: "resume", type: "button", onclick: act("resume") }, "Resume")
      : h("button", { class: "pause", type: "button", onclick: act("pause") }, "Pause"));
  }
  return buttons.length ? h("div", { class: "rule-controls" }, ...buttons, outcome) : "";
}

/** 32 random hex digits (crypto.randomUUID needs https, which a team server on a LAN may not have). */
function randomId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function firingItem(firing) {
  return h("li", { class: `firing state-${firing.state}`, dataset: { firing: firing.id, rule: firing.rule } },
    h("div", { class: "when" }, when(firing.created)),
    h("div", { class: "what" },
      h("b", {}, firing.rule), h("span", { class: "muted" }, ` v${firing.rule_version}`), " fired on ",
      h("span", { class: "tag" }, firing.trigger), " for ", link(`/models/${seg(firing.model)}`, firing.model), " ",
      status(firing.state),
      firing.reason ? h("p", { class: "reason" }, firing.reason) : null,
      eventDetail(firing.event),
      table([
        { label: "#", cell: (a) => String(a.position + 1), class: "n" },
        { label: "Action", cell: (a) => h("code", {}, a.kind) },
        { label: "Result", cell: (a) => status(a.status) },
        { label: "Started", cell: (a) => when(a.started) },
        { label: "Finished", cell: (a) => when(a.finished) },
        { label: "Lineage", cell: (a) => lineage(firing.model, a.result || {}) },
        { label: "Detail", cell: (a) => detail(a.result || {}) },
      ], firing.actions, { className: "actions", empty: "No action has started.",
        hook: (tr, a) => { tr.dataset.kind = a.kind; tr.dataset.status = a.status; } })));
}

function eventDetail(event) {
  const entries = Object.entries(event || {}).filter(([key]) => !["id", "rule"].includes(key));
  if (!entries.length) return null;
  return h("details", { class: "event" }, h("summary", {}, "event"),
    h("dl", {}, entries.map(([key, v]) => [h("dt", {}, key), h("dd", {}, value(v))])));
}

/** Links to what an action touched or produced: a flow run, the challenger and champion, the version promoted. */
function lineage(model, result) {
  const version = (v, label) => link(`/models/${seg(model)}/versions/${seg(v)}`, `${label} v${v}`);
  return h("span", { class: "lineage" }, [
    result.flow_run ? link(`/flows/${seg(result.flow_run)}`, `flow run ${String(result.flow_run).slice(0, 10)}`)
      : null,
    result.challenger_version !== undefined ? version(result.challenger_version, "challenger") : null,
    result.champion_version !== undefined ? version(result.champion_version, "champion") : null,
    result.to !== undefined && result.to !== null ? version(result.to, `@${result.alias || "alias"} →`) : null,
    result.from !== undefined && result.from !== null ? h("span", { class: "muted" }, `(was v${result.from})`)
      : null,
  ].filter(Boolean).flatMap((node, i) => (i ? [" ", node] : [node])));
}

const SHOWN_ELSEWHERE = new Set(["flow_run", "challenger_version", "champion_version", "to", "from", "alias"]);

function detail(result) {
  const rest = Object.entries(result).filter(([key]) => !SHOWN_ELSEWHERE.has(key));
  if (!rest.length) return "";
  return h("span", { class: "small" }, rest.map(([key, v]) => h("span", { class: "kv" }, h("b", {}, key), " ",
    typeof v === "object" && v !== null ? (v.reason ?? JSON.stringify(v)) : value(v))));
}
