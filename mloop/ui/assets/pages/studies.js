// The hyperparameter studies (mloop.tune): each with its direction, trials by state and best value, linking to
// the study's page.

import { api, h, link, num, seg, table } from "../lib.js";

export async function render(main) {
  const studies = await api("/tuning/studies");
  main.append(h("h1", {}, "Studies"), table([
    { label: "Name", cell: (s) => link(`/studies/${seg(s.name)}`, s.name) },
    { label: "Direction", cell: (s) => s.direction },
    { label: "Metric", cell: (s) => s.metric },
    { label: "Done", cell: (s) => String(s.trials.complete || 0), class: "n" },
    { label: "Pruned", cell: (s) => String(s.trials.pruned || 0), class: "n" },
    { label: "Failed", cell: (s) => String(s.trials.fail || 0), class: "n" },
    { label: "Running", cell: (s) => String(s.trials.running || 0), class: "n" },
    { label: "Best value", cell: (s) => num(s.best_value), class: "n" },
    { label: "Best trial", cell: (s) => (s.best_trial === null ? "" : `#${s.best_trial}`), class: "n" },
    { label: "Study run", cell: (s) => (s.run_id ? link(`/runs/${seg(s.run_id)}`, s.run_id.slice(0, 12)) : "") },
  ], studies, { empty: "No studies yet: search with mloop.tune(objective, space, n_trials=...).",
    className: "studies" }));
}
