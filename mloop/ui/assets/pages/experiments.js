// The experiments: each with its number of runs, a link to its runs table, and its tags.

import { api, h, link, seg, table, when } from "../lib.js";

export async function render(main) {
  const experiments = await api("/experiments");
  const count = (e) => api("/runs/page", { method: "POST",
    body: { experiment_ids: [e.experiment_id], limit: 1, with_columns: false } }).then((page) => page.total, () => null);
  const counts = await Promise.all(experiments.slice(0, 200).map(count));
  const rows = experiments.map((e, i) => ({ ...e, runs: counts[i] }));
  main.append(h("h1", {}, "Experiments"), table([
    { label: "Name", cell: (e) => link(`/experiments/${seg(e.experiment_id)}`, e.name) },
    { label: "Id", cell: (e) => e.experiment_id },
    { label: "Runs", cell: (e) => (e.runs === null || e.runs === undefined ? "" : String(e.runs)), class: "n" },
    { label: "Created", cell: (e) => when(e.creation_time) },
    { label: "Last update", cell: (e) => when(e.last_update_time) },
    { label: "Tags", cell: (e) => Object.entries(e.tags).map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`)) },
  ], rows, { empty: "No experiments yet: start a run with mloop.start_run(experiment=...).", className: "experiments" }));
}
