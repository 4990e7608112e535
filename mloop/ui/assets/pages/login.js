// The login seam: the server has no authentication yet, so nobody is ever sent here by a 401 today. When it has,
// this page asks for credentials, posts them to the server's login route and goes back to ``next``.

import { h, link, query, section } from "../lib.js";

export async function render(main) {
  const next = query().next || "/";
  main.append(section("Sign in",
    h("p", {}, "This server does not ask anyone to sign in yet."),
    h("p", {}, link(next.startsWith("/") ? next : "/", "Go back"))));
}
