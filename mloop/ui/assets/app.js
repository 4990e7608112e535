// The UI's router: every page is a real path served by the same HTML shell, so each one can be shared and
// bookmarked. A page is a module in ./pages exporting ``render(main, match)``; app.js picks it from the path,
// keeps the navigation bar, and marks the page ready for people (and tests) once it has rendered.

import { api, errorBox, h, link, me, navigate, onUnauthorized, root, setSession } from "./lib.js";

// To add a page: its module under ./pages, a pattern here, and (if it deserves one) a NAV entry. The server
// answers every path under the first segments listed in mloop/ui/_routes.py's PAGE_ROOTS with this shell.
const PAGES = [
  { pattern: /^\/$/, module: "./pages/experiments.js", nav: "/" },
  { pattern: /^\/experiments\/?$/, module: "./pages/experiments.js", nav: "/" },
  { pattern: /^\/experiments\/(?<experiment>[^/]+)\/?$/, module: "./pages/runs.js", nav: "/" },
  { pattern: /^\/runs\/(?<run>[^/]+)\/?$/, module: "./pages/run.js", nav: "/" },
  { pattern: /^\/compare\/?$/, module: "./pages/compare.js", nav: "/" },
  { pattern: /^\/login\/?$/, module: "./pages/login.js" },
  { pattern: /^\/models\/?$/, module: "./pages/models.js", nav: "/models" },
  { pattern: /^\/models\/(?<model>[^/]+)\/?$/, module: "./pages/model.js", nav: "/models" },
  { pattern: /^\/models\/(?<model>[^/]+)\/versions\/(?<version>[^/]+)\/?$/, module: "./pages/version.js",
    nav: "/models" },
  { pattern: /^\/features\/?$/, module: "./pages/features.js", nav: "/features" },
  { pattern: /^\/features\/(?<name>[^/]+)\/?$/, module: "./pages/features.js", nav: "/features" },
  { pattern: /^\/flows\/?$/, module: "./pages/flows.js", nav: "/flows" },
  { pattern: /^\/flows\/(?<run>[^/]+)\/?$/, module: "./pages/flows.js", nav: "/flows" },
  { pattern: /^\/quality\/runs\/(?<run>[^/]+)\/?$/, module: "./pages/quality.js", nav: "/" },
  { pattern: /^\/quality\/models\/(?<model>[^/]+)\/versions\/(?<version>[^/]+)\/?$/,
    module: "./pages/quality.js", nav: "/models" },
  { pattern: /^\/monitoring\/?$/, module: "./pages/monitoring.js", nav: "/monitoring" },
  { pattern: /^\/monitoring\/(?<monitor>[^/]+)\/?$/, module: "./pages/monitoring.js", nav: "/monitoring" },
  { pattern: /^\/studies\/?$/, module: "./pages/studies.js", nav: "/studies" },
  { pattern: /^\/studies\/(?<study>[^/]+)\/?$/, module: "./pages/study.js", nav: "/studies" },
  { pattern: /^\/models\/(?<model>[^/]+)\/versions\/(?<version>[^/]+)\/analysis\/?$/, module: "./pages/analysis.js",
    nav: "/models" },
  { pattern: /^\/automation\/?$/, module: "./pages/automation.js", nav: "/automation" },
  { pattern: /^\/models\/(?<model>[^/]+)\/automation\/?$/, module: "./pages/automation.js", nav: "/automation" },
];

const NAV = [
  { path: "/", label: "Experiments" },
  { path: "/models", label: "Models" },
  { path: "/features", label: "Features" },
  { path: "/flows", label: "Flows" },
  { path: "/monitoring", label: "Monitoring" },
  { path: "/studies", label: "Studies" },
  { path: "/automation", label: "Automation" },
];

let rendering = 0; // a newer navigation wins over a page still loading

async function render() {
  const path = location.pathname.slice(root.length) || "/";
  const main = document.getElementById("page");
  const ticket = ++rendering;
  main.dataset.state = "loading";
  const page = PAGES.find((p) => p.pattern.test(path));
  drawNav(page && page.nav);
  drawWho(path);
  const content = h("div", { class: "content" });
  try {
    if (!page) throw new Error(`No page at ${path}.`);
    const groups = path.match(page.pattern).groups || {};
    const match = Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, decodeURIComponent(v)]));
    const module = await import(page.module);
    if (ticket !== rendering) return;
    main.replaceChildren(content);
    await module.render(content, match);
  } catch (error) {
    if (ticket !== rendering) return;
    console.error(error);
    main.replaceChildren(content);
    content.append(errorBox(error));
  }
  if (ticket === rendering) main.dataset.state = "ready";
}

function drawNav(current) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...NAV.map((item) => {
    const a = link(item.path, item.label);
    if (item.path === current) a.classList.add("current");
    return a;
  }));
}

// Who is signed in, and the way out. Without auth there is nobody to show; without a session (401) the API call
// has already sent the person to the login page.
async function drawWho(path) {
  const who = document.getElementById("who");
  if (path.startsWith("/login")) { who.replaceChildren(); return; }
  let found;
  try { found = await me(); } catch { return; }
  if (!found.auth) { who.replaceChildren(); return; }
  const signOut = async () => {
    try { await api("/auth/logout", { method: "POST" }); } finally {
      setSession(null);
      navigate("/login");
    }
  };
  who.replaceChildren(h("span", { class: "user", title: found.is_admin ? "server admin" : "" }, found.name),
    h("button", { type: "button", class: "sign-out", onclick: signOut }, "Sign out"));
}

// Links marked data-internal navigate in place; a modified click (new tab, new window) keeps the browser's way.
document.addEventListener("click", (event) => {
  const a = event.target.closest && event.target.closest("a[data-internal]");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(a.getAttribute("href").slice(root.length));
});
window.addEventListener("popstate", render);
window.addEventListener("mloop:navigate", render);
onUnauthorized(() => {
  if (!location.pathname.startsWith(`${root}/login`)) {
    navigate(`/login?next=${encodeURIComponent(location.pathname.slice(root.length) + location.search)}`);
  }
});
render();
