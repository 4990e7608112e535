// Metric charts shared by the run and compare pages: one chart per metric key with one line per run. The server
// downsamples each series (keeping every bucket's extremes); zooming in asks it again for the visible steps, so
// detail appears however long the series, and double-clicking back out shows the whole series again.

import { PALETTE, errorBox, esc, h, metricWindow, numbers, plot, section } from "../lib.js";

const MAX_CHARTS = 40;
const POINTS = 1500;
const PREVIEW = 300; // points of the quick sample drawn first for a long series

/**
 * Append a section of charts to ``main``; resolves once every chart has its first data. A metric with one value
 * per run is a bar per run when there are several runs, and no chart at all for one run (its value is listed).
 */
export function metricCharts(main, title, runIds, keys, { names = runIds } = {}) {
  const grid = h("div", { class: "charts" });
  const shown = keys.slice(0, MAX_CHARTS);
  const more = keys.length > shown.length
    ? h("p", { class: "muted" }, `${keys.length - shown.length} more metrics are not charted here.`) : null;
  main.append(section(title, grid, more));
  return Promise.all(shown.map((key) => {
    const element = h("div", { class: "chart", dataset: { key } });
    const note = h("div", { class: "muted small chart-note" });
    grid.append(h("div", {}, element, note));
    return chart(element, note, runIds, names, key);
  })).then(() => {
    const single = grid.querySelectorAll(".chart[data-single]");
    if (runIds.length === 1) single.forEach((element) => element.parentElement.remove());
    if (!grid.children.length) grid.replaceWith(h("p", { class: "muted" }, "Each metric has a single value here."));
  });
}

async function lines(element, note, windows, names, key, start, end, preview) {
  const traces = windows.map((w, i) => (w && {
    x: w.steps, y: numbers(w.values), name: esc(names[i]), type: "scatter",
    mode: w.steps.length > 1 ? "lines" : "markers", line: { color: PALETTE[i % PALETTE.length], width: 1.5 },
    marker: { color: PALETTE[i % PALETTE.length] },
  })).filter(Boolean);
  const zoomed = start !== undefined;
  await plot(element, traces, {
    title: { text: esc(key), x: 0.02, font: { size: 13 } }, showlegend: windows.length > 1,
    xaxis: zoomed ? { title: { text: "step" }, range: [start, end], autorange: false, zeroline: false }
      : { title: { text: "step" }, autorange: true, zeroline: false },
    yaxis: { autorange: true },
  });
  const drawn = traces.reduce((sum, t) => sum + t.x.length, 0);
  if (preview) {
    note.textContent = `a sample of ${drawn} points while every point is summarized...`;
    element.dataset.preview = String(drawn);
    return;
  }
  const total = windows.reduce((sum, w) => sum + (w ? w.total : 0), 0);
  note.textContent = drawn < total ? `${drawn} of ${total} points in view (extremes kept); zoom for detail`
    : `${total} points`;
  element.dataset.points = String(drawn);
  element.dataset.total = String(total);
}

function bars(element, note, windows, names, key) {
  const values = windows.map((w) => (w && w.values.length ? numbers(w.values)[0] : null));
  element.dataset.single = "";
  element.dataset.points = String(values.filter((v) => v !== null).length);
  note.textContent = "one value per run";
  return plot(element, [{ type: "bar", x: names.map(esc), y: values,
    marker: { color: names.map((_, i) => PALETTE[i % PALETTE.length]) } }],
  { title: { text: esc(key), x: 0.02, font: { size: 13 } }, showlegend: false });
}

async function chart(element, note, runIds, names, key) {
  let ticket = 0;
  const draw = async (start, end) => {
    const mine = ++ticket;
    const exact = Promise.all(runIds.map((id) => metricWindow(id, key, { start, end, maxPoints: POINTS })
      .catch(() => null)));
    let settled = false;
    if (start === undefined) { // a long series: draw a quick sample while the server summarizes every point
      Promise.all(runIds.map((id) => metricWindow(id, key, { maxPoints: PREVIEW, sample: true }).catch(() => null)))
        .then((windows) => {
          if (!settled && mine === ticket && windows.some((w) => w && w.total === null)) {
            lines(element, note, windows, names, key, start, end, true);
          }
        });
    }
    const windows = await exact;
    settled = true;
    if (mine !== ticket) return; // a later zoom already asked for other steps
    if (start === undefined && windows.every((w) => !w || w.total <= 1)) {
      await bars(element, note, windows, names, key);
      return;
    }
    await lines(element, note, windows, names, key, start, end, false);
  };
  await draw();
  if (!element.on || "single" in element.dataset) return; // no chart library, or bars (nothing to zoom into)
  element.on("plotly_relayout", (change) => {
    if (change["xaxis.autorange"]) draw();
    else if (change["xaxis.range[0]"] !== undefined) draw(change["xaxis.range[0]"], change["xaxis.range[1]"]);
  });
}
