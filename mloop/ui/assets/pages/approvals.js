// Approval requests with Approve and Reject buttons that call the API; a refusal (already decided, not allowed)
// shows the API's own message beside the request. Shared by the models page and a model's page. The buttons are
// offered only to someone who holds maintainer in the model's project (``canDecide``); the API checks anyway.

import { api, errorBox, h, link, navigate, root, seg, table, value, when } from "../lib.js";

export function approvals(pending, { canDecide = () => true } = {}) {
  return table([
    { label: "#", cell: (r) => String(r.id), class: "n" },
    { label: "Model", cell: (r) => link(`/models/${seg(r.name)}/versions/${seg(r.version)}`, `${r.name} v${r.version}`) },
    { label: "To", cell: (r) => r.env },
    { label: "Requested by", cell: (r) => r.requested_by },
    { label: "When", cell: (r) => when(r.requested) },
    { label: "Reason", cell: (r) => r.reason },
    { label: "Decision", cell: (r) => (canDecide(r) ? decision(r)
      : h("span", { class: "muted small no-decision" }, "needs the maintainer role in the model's project")) },
  ], pending, { empty: "Nothing waits for approval.", className: "approvals",
    hook: (tr, r) => { tr.dataset.request = String(r.id); } });
}

function decision(request) {
  const comment = h("input", { type: "text", name: "comment", placeholder: "comment", maxlength: "2000" });
  const outcome = h("div", { class: "outcome" });
  const decide = (verb) => async (event) => {
    const buttons = event.target.parentElement.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await api(`/registry/approvals/${seg(request.id)}/${verb}`, { method: "POST", body: { comment: comment.value } });
      navigate(location.pathname.slice(root.length) + location.search, { replace: true });
    } catch (error) {
      outcome.replaceChildren(errorBox(error));
      buttons.forEach((b) => { b.disabled = false; });
    }
  };
  return h("div", { class: "decision" }, comment,
    h("button", { class: "primary approve", type: "button", onclick: decide("approve") }, "Approve"),
    h("button", { class: "reject", type: "button", onclick: decide("reject") }, "Reject"), outcome);
}

export function auditLog(entries) {
  return table([
    { label: "When", cell: (e) => when(e.time) },
    { label: "Who", cell: (e) => e.actor },
    { label: "Action", cell: (e) => h("code", {}, e.action) },
    { label: "Model", cell: (e) => (e.model ? link(`/models/${seg(e.model)}`, e.model) : "") },
    { label: "Target", cell: (e) => e.target },
    { label: "Before", cell: (e) => value(e.before) },
    { label: "After", cell: (e) => value(e.after) },
  ], entries, { empty: "No registry changes recorded.", className: "audit" });
}
