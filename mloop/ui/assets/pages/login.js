// Signing in: the person pastes a token (and, if they like, their user name, checked against it); the server
// answers with a session cookie the page cannot read, and the page goes back to where the person was sent from.
// The token stays in the form's field only: it is never stored by the page nor put in a URL.

import { ApiError, api, errorBox, h, link, me, navigate, query, section, setSession } from "../lib.js";

export async function render(main) {
  // only a path of this site: "//host" or "/\\host" would send the person elsewhere after signing in
  const asked = query().next || "/";
  const next = /^\/(?![/\\])/.test(asked) ? asked : "/";
  let who = null;
  try { who = await me({ fresh: true }); } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
  }
  if (who && !who.auth) {
    main.append(section("Sign in", h("p", {}, "This server does not ask anyone to sign in."),
      h("p", {}, link(next, "Go on"))));
    return;
  }
  const user = h("input", { type: "text", name: "user", id: "login-user", autocomplete: "username",
    maxlength: "128", placeholder: "optional" });
  const token = h("input", { type: "password", name: "token", id: "login-token", autocomplete: "current-password",
    maxlength: "256", required: true, placeholder: "mlp_..." });
  const outcome = h("div", { class: "outcome", "aria-live": "polite" });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const submit = async (event) => {
    event.preventDefault();
    button.disabled = true;
    outcome.replaceChildren();
    try {
      const session = await api("/auth/login", { method: "POST",
        body: { token: token.value.trim(), ...(user.value.trim() ? { user: user.value.trim() } : {}) } });
      token.value = "";
      setSession(session);
      navigate(next, { replace: true });
    } catch (error) {
      token.value = "";
      // the server's own reason (a refused token, too many attempts), not the generic "not signed in"
      outcome.replaceChildren(error instanceof ApiError && error.status !== 403
        ? h("div", { class: "error", role: "alert" }, error.message) : errorBox(error));
      button.disabled = false;
      token.focus();
    }
  };
  main.append(section("Sign in",
    who ? h("p", { class: "muted" }, `Signed in as ${who.name}; sign in again to change user.`) : null,
    h("form", { class: "login", onsubmit: submit },
      h("label", { for: "login-user" }, "User"), user,
      h("label", { for: "login-token" }, "Token"), token,
      button, outcome),
    h("p", { class: "muted small" }, "A token comes from your admin: mloop auth tokens create USER. The page keeps "
      + "a session cookie, not the token; signing out ends the session.")));
  token.focus();
}
