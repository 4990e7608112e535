// A run's artifacts: every file with its size, a download link, and a preview beside the list for text, JSON,
// images and HTML reports (a report is shown in a sandboxed frame served with its own sandbox policy, so its
// scripts cannot reach this page or the server).

import { api, bytes, errorBox, h, root, seg } from "../lib.js";

const PREVIEW_LIMIT = 1024 * 1024; // larger files are downloaded, not read into the page
const TEXT = /\.(txt|log|md|csv|tsv|py|yaml|yml|toml|ini|cfg|sql|sh|r|xml|out|err|mlmodel|requirements)$/i;
const IMAGE = /\.(png|jpe?g|gif|webp|svg|bmp)$/i;
const HTML = /\.html?$/i;
const JSON_FILE = /\.(json|jsonl|ipynb)$/i;

const fileUrl = (runId, path, kind = "artifacts") =>
  `${root}/api/runs/${seg(runId)}/${kind}/${path.split("/").map(seg).join("/")}`;

export async function artifactBrowser(runId) {
  const artifacts = await api(`/runs/${seg(runId)}/artifacts`);
  if (!artifacts.length) return h("p", { class: "muted" }, "No artifacts logged.");
  const preview = h("div", { class: "preview", "aria-live": "polite" },
    h("p", { class: "muted" }, "Pick a file to preview it here."));
  let folder = null;
  const items = [];
  for (const artifact of artifacts) {
    const slash = artifact.path.lastIndexOf("/");
    const dir = slash >= 0 ? artifact.path.slice(0, slash + 1) : "";
    if (dir && dir !== folder) items.push(h("li", { class: "folder" }, dir));
    folder = dir;
    items.push(h("li", { dataset: { path: artifact.path } },
      h("span", { style: dir ? "padding-left:1rem" : "" }, artifact.path.slice(slash + 1)),
      h("span", { class: "size" }, bytes(artifact.size)),
      h("button", { type: "button", class: "show", onclick: () => show(preview, runId, artifact) }, "Preview"),
      h("a", { href: fileUrl(runId, artifact.path), download: artifact.path.slice(slash + 1) }, "Download")));
  }
  return h("div", { class: "artifacts" }, h("ul", {}, items), preview);
}

async function show(preview, runId, artifact) {
  const { path } = artifact;
  const title = h("h3", {}, path);
  preview.dataset.path = path;
  if (IMAGE.test(path)) {
    preview.replaceChildren(title, h("img", { src: fileUrl(runId, path), alt: path }));
  } else if (HTML.test(path)) {
    preview.replaceChildren(title, h("iframe", { sandbox: "allow-scripts", src: fileUrl(runId, path, "preview"),
      title: path, referrerpolicy: "no-referrer" }));
  } else if (artifact.size > PREVIEW_LIMIT) {
    preview.replaceChildren(title, h("p", { class: "muted" }, `${bytes(artifact.size)}: too large to preview; `
      + "download it instead."));
  } else if (JSON_FILE.test(path) || TEXT.test(path) || !/\.[a-z0-9]+$/i.test(path)) {
    preview.replaceChildren(title, h("p", { class: "muted" }, "Loading..."));
    try {
      const answer = await fetch(fileUrl(runId, path), { credentials: "same-origin" });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      let text = await answer.text();
      if (/\.json$/i.test(path)) {
        try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as stored */ }
      }
      if (preview.dataset.path === path) preview.replaceChildren(title, h("pre", { class: "text" }, text));
    } catch (error) {
      preview.replaceChildren(title, errorBox(error));
    }
  } else {
    preview.replaceChildren(title, h("p", { class: "muted" }, "No preview for this kind of file; download it."));
  }
}
