// A step's artifact as the server previews it: a table's first rows under its column names and types, an array's
// shape, dtype and first values, a plain value; anything that would run code to load, only its type and size.

import { api, bytes, errorBox, h, num, seg, table, value } from "../lib.js";

/** Show ``artifact`` of ``task`` (of flow ``run``) in ``pane``, replacing what it showed. */
export async function showArtifact(pane, run, task, artifact) {
  pane.dataset.state = "loading";
  pane.replaceChildren(h("p", { class: "muted" }, "Loading..."));
  try {
    const found = await api(`/flows/runs/${seg(run.run_id)}/tasks/${seg(task.task_id)}/artifacts/`
      + `${seg(artifact.name)}/preview`);
    pane.replaceChildren(h("div", { class: `artifact-preview kind-${found.kind}`, dataset: { name: found.name } },
      h("h3", {}, `${found.name} of ${task.path}`),
      h("p", { class: "muted small" }, `${found.encoding}, ${bytes(found.size)}`), body(found)));
  } catch (error) {
    pane.replaceChildren(errorBox(error));
  }
  pane.dataset.state = "ready";
}

function body(found) {
  if (found.kind === "table") {
    const columns = found.columns.map((c, i) => ({ header: h("span", {}, c.name, h("br"),
      h("span", { class: "muted small" }, c.type)), cell: (row) => value(row[i]) }));
    return [h("p", {}, `${num(found.rows_total)} rows; the first ${found.rows.length}:`),
      h("div", { class: "table-box" }, table(columns, found.rows, { className: "artifact-rows", empty: "no rows" }))];
  }
  if (found.kind === "array") {
    return [h("p", {}, `shape ${JSON.stringify(found.shape)}, dtype ${found.dtype}; the first values:`),
      h("pre", { class: "code" }, JSON.stringify(found.values))];
  }
  if (found.kind === "value") {
    return [h("p", {}, `a ${found.type}:`), h("pre", { class: "code value" }, JSON.stringify(found.value, null, 2))];
  }
  return h("p", { class: "muted opaque" }, found.reason);
}
