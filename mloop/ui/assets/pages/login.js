// The login seam: the server has no authentication yet, so nobody is ever sent here by a 401 today. When it has,
// this page asks for credentials, posts them to the server's login route and goes back to ``next``.

import { h, link, query, section } from "../lib.js";

export async function render(main) {
  // only a path of this site: "//host" or "/\\host" would send the person elsewhere after signing in
  const asked = query().next || "/";
  const next = /^\/(?![/\\])/.test(asked) ? asked : "/";
  main.append(section("Sign in",
    h("p", {}, "This server does not ask anyone to sign in yet."),
    h("p", {}, link(next, "Go back"))));
}
