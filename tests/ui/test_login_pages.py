"""Signing in to the UI in a real Chromium against a real server with auth on: the login page and its way back,
the cookie (HttpOnly, Strict, not the token), previews and downloads with the cookie, logout, a CSRF attempt from a
page of another origin, and what a viewer of one project sees of another."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mloop.auth import AuthStore
from mloop.config import Settings
from tests.conftest import free_port
from tests.server.conftest import serve
from tests.ui.conftest import Browser, _png


@dataclass
class Team:
    url: str
    tokens: dict[str, str]  # user -> token
    experiments: dict[str, str]  # project -> experiment id
    runs: dict[str, str]  # project -> run id


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """Two projects, A and B, each an experiment with a run (A's with an image and an HTML report); ana views A,
    eve edits A, root is a server admin. Both also hold their role in 'default': on this branch the runs table's
    POST /api/runs/page is checked against 'default' only (the projects branch checks the experiments it names)."""
    import mloop

    home = tmp_path_factory.mktemp("login-home")
    settings = dataclasses.replace(Settings.load(home=str(home), tracking_uri=""), auth=True)
    client = mloop.configure(home=str(home), tracking_uri="")
    experiments, runs = {}, {}
    for project in ("A", "B"):
        experiment = client.create_experiment(f"exp-{project.lower()}", tags={"project": project})
        experiments[project] = experiment.experiment_id
        with client.start_run(f"exp-{project.lower()}", f"run-of-{project}", params={"p": project}) as run:
            run.log_metric("val_rmse", 1.0 if project == "A" else 2.0)
            if project == "A":
                image = home / "curve.png"
                image.write_bytes(_png())
                run.log_artifact(image, "plots/curve.png")
                run.log_text("<html><body><h1 id='report'>Report of A</h1></body></html>", "report.html")
            runs[project] = run.run_id
    client.writer.settle()
    _pending_deployment(settings, home)
    store = AuthStore(settings.db_url)
    tokens = {}
    for user, role in (("ana", "viewer"), ("eve", "editor")):
        store.add_user(user)
        store.grant(user, "A", role)
        store.grant(user, "default", role)
        tokens[user] = store.create_token(user).text
    store.add_user("root", admin=True)
    tokens["root"] = store.create_token("root").text
    for live in serve(settings):
        yield Team(live.url, tokens, experiments, runs)


def _pending_deployment(settings: Settings, home) -> None:
    """model-a (project A) v1, waiting for approval to go to the gated environment 'prod'."""
    import numpy as np
    from sklearn.linear_model import Ridge

    import mloop
    from mloop.registry import registry_for

    with mloop.start_run(experiment="exp-a", name="fit-a") as run:
        run.log_model(Ridge().fit(np.arange(20.0).reshape(10, 2), np.arange(10.0)), name="model-a")
    registry = registry_for(settings)
    registry.update_model("model-a", tags={"project": "A"})
    registry.environments.create("prod", requires_approval=True)
    registry.environments.deploy("model-a", 1, "prod", reason="ship it")


def _sign_in(browser: Browser, team: Team, user: str, asked: str) -> None:
    page = browser.page
    page.goto(team.url + asked)
    page.wait_for_selector("form.login", timeout=20_000)
    page.fill("#login-token", team.tokens[user])
    page.click("form.login button[type=submit]")
    page.wait_for_selector("#who .user", timeout=20_000)


def test_login_refuses_a_bad_token_then_lands_on_the_page_asked_for(team: Team, fresh_browser: Browser) -> None:
    page = fresh_browser.page
    asked = f"/experiments/{team.experiments['A']}?filter=metrics.val_rmse%20%3C%205"
    page.goto(team.url + asked)
    page.wait_for_selector("form.login", timeout=20_000)
    assert page.url.startswith(team.url + "/login?next=")
    bad = "mlp_0123456789ab_" + "x" * 43
    page.fill("#login-token", bad)
    page.click("form.login button[type=submit]")
    message = page.wait_for_selector("form.login .error", timeout=20_000).inner_text()
    assert "not accepted" in message and bad not in page.content()
    assert page.input_value("#login-token") == ""  # the refused token is not kept in the form
    fresh_browser.shot("login-refused")

    page.fill("#login-token", team.tokens["ana"])
    page.click("form.login button[type=submit]")
    page.wait_for_selector("table.runs tbody tr", timeout=20_000)
    landed = urlsplit(page.url)
    assert landed.path == f"/experiments/{team.experiments['A']}"
    assert parse_qs(landed.query)["filter"] == ["metrics.val_rmse < 5"]  # the query came back too
    assert page.inner_text("#who .user") == "ana"
    assert "run-of-A" in page.inner_text("table.runs")
    fresh_browser.shot("login-landed")

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["mloop_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert session["value"] not in team.tokens.values() and team.tokens["ana"] not in str(cookies)
    assert "mloop_session" not in page.evaluate("() => document.cookie")  # no script can read it


def test_previews_and_downloads_work_with_the_cookie(team: Team, fresh_browser: Browser) -> None:
    _sign_in(fresh_browser, team, "ana", f"/runs/{team.runs['A']}")
    page = fresh_browser.page
    page.wait_for_selector(".artifacts li[data-path='plots/curve.png']", timeout=20_000)
    page.click(".artifacts li[data-path='plots/curve.png'] button.show")
    fresh_browser.until("() => { const i = document.querySelector('.preview img'); "
                        "return i && i.complete && i.naturalWidth > 0; }")
    page.click(".artifacts li[data-path='report.html'] button.show")
    frame = page.wait_for_selector(".preview iframe", timeout=10_000).content_frame()
    assert frame.wait_for_selector("#report", timeout=10_000).inner_text() == "Report of A"  # sent with the cookie
    link = page.get_attribute(".artifacts li[data-path='plots/curve.png'] a", "href")
    status = page.evaluate("(href) => fetch(href, {credentials: 'same-origin'}).then((r) => r.status)", link)
    assert status == 200
    fresh_browser.shot("login-previews")


def test_logout_ends_the_session_and_pages_send_to_login_again(team: Team, fresh_browser: Browser) -> None:
    _sign_in(fresh_browser, team, "ana", "/experiments/" + team.experiments["A"])
    page = fresh_browser.page
    secret = next(c["value"] for c in page.context.cookies() if c["name"] == "mloop_session")
    page.click("#who .sign-out")
    page.wait_for_selector("form.login", timeout=20_000)
    assert "mloop_session" not in {c["name"] for c in page.context.cookies()}
    assert httpx.get(team.url + "/api/experiments/" + team.experiments["A"],
                     cookies={"mloop_session": secret}).status_code == 401  # the old cookie is dead on the server
    page.goto(team.url + "/runs/" + team.runs["A"])
    page.wait_for_selector("form.login", timeout=20_000)
    assert "/login?next=%2Fruns%2F" in page.url
    fresh_browser.shot("login-after-logout")


class _Attacker(BaseHTTPRequestHandler):
    """A page of another origin (another port of the same host: the same *site*, so SameSite lets the cookie go)
    that tries to create an experiment with the signed-in person's session in three ways."""

    target = ""

    def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
        body = f"""<!doctype html><html><body><h1>cute cats</h1>
<form id="f" method="POST" action="{self.target}/api/experiments" enctype="text/plain">
<input name='{{"name": "pwned-form", "x": "' value='"}}'></form>
<script>
const url = "{self.target}/api/experiments";
const tries = [
  fetch(url, {{method: "POST", credentials: "include", headers: {{"Content-Type": "text/plain"}},
    body: JSON.stringify({{name: "pwned-simple"}})}}).then((r) => "simple " + r.status, (e) => "simple blocked"),
  fetch(url, {{method: "POST", credentials: "include", headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{name: "pwned-json"}})}}).then((r) => "json " + r.status, (e) => "json blocked"),
];
Promise.all(tries).then((seen) => {{ document.title = seen.join(", "); }});
</script></body></html>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_cross_origin_post_with_the_cookie_is_refused(team: Team, fresh_browser: Browser) -> None:
    _sign_in(fresh_browser, team, "eve", "/experiments/" + team.experiments["A"])
    handler = type("Attacker", (_Attacker,), {"target": team.url})
    port = free_port()
    evil = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page = fresh_browser.page
        responses: list[tuple[str, int]] = []
        page.on("response", lambda r: responses.append((r.request.method, r.status))
                if "/api/experiments" in r.url else None)
        page.goto(f"http://127.0.0.1:{port}/")
        seen = fresh_browser.until("() => document.title.includes('simple') && document.title")
        fresh_browser.shot("csrf-attacker")
        with page.expect_navigation():
            page.evaluate("() => document.getElementById('f').submit()")  # a form POST needs no script to read
        form_answer = page.inner_text("body")
    finally:
        evil.shutdown()
    # the session was live: the same browser may create one from mloop's own page
    with httpx.Client(base_url=team.url, headers={"Authorization": f"Bearer {team.tokens['root']}"}) as root:
        names = {e["name"] for e in root.get("/api/experiments").json()}
    assert not {"pwned-form", "pwned-simple", "pwned-json"} & names
    assert "simple 403" in seen or "simple blocked" in seen, seen  # refused by the server (Origin) or never sent
    assert "json blocked" in seen, seen  # its preflight found no CORS permission
    assert "CROSS_ORIGIN" in form_answer or "UNSUPPORTED_MEDIA_TYPE" in form_answer, form_answer
    assert all(status in (403, 415) for method, status in responses if method == "POST"), responses


def test_a_viewer_sees_a_clear_refusal_for_another_project(team: Team, fresh_browser: Browser) -> None:
    _sign_in(fresh_browser, team, "ana", "/experiments/" + team.experiments["A"])
    page = fresh_browser.page
    fresh_browser.open(team.url + "/experiments/" + team.experiments["B"])
    refusal = page.wait_for_selector(".error.refused", timeout=10_000)
    assert refusal.get_attribute("data-status") == "403" and "do not have access" in refusal.inner_text()
    assert "run-of-B" not in page.inner_text("main")
    fresh_browser.shot("viewer-refused-b")
    fresh_browser.open(team.url + f"/runs/{team.runs['B']}")
    assert page.locator(".error.refused").count() == 1 and "run-of-B" not in page.inner_text("main")


def test_a_viewer_of_a_does_not_see_b_in_the_listings(team: Team, fresh_browser: Browser) -> None:
    with httpx.Client(base_url=team.url, headers={"Authorization": f"Bearer {team.tokens['ana']}"}) as ana:
        listed = ana.get("/api/experiments")
    assert listed.status_code == 200 and [e["name"] for e in listed.json() if e["name"] == "exp-b"] == []
    _sign_in(fresh_browser, team, "ana", "/")
    page = fresh_browser.page
    page.wait_for_selector("main[data-state=ready]")
    text = page.inner_text("main")
    assert "exp-a" in text and "exp-b" not in text
    fresh_browser.open(team.url + "/experiments/" + team.experiments["A"])
    assert "run-of-B" not in page.inner_text("table.runs") and "run-of-A" in page.inner_text("table.runs")
    fresh_browser.shot("viewer-listing")


def test_without_auth_the_login_page_lets_everyone_through(ui_data, fresh_browser: Browser) -> None:
    page = fresh_browser.open(ui_data.url + "/login?next=/models")
    assert "does not ask anyone to sign in" in page.inner_text("main")
    assert page.inner_text("#who") == ""
    page.click("main a[data-internal]")
    page.wait_for_selector("table.models", timeout=10_000)
    assert page.url == ui_data.url + "/models" and not fresh_browser.problems




def test_approve_and_reject_are_offered_only_to_a_maintainer(team: Team, fresh_browser: Browser) -> None:
    _sign_in(fresh_browser, team, "ana", "/models/model-a")
    page = fresh_browser.page
    page.wait_for_selector("table.approvals tbody tr", timeout=20_000)
    assert page.locator("table.approvals button.approve").count() == 0
    assert "needs the maintainer role" in page.inner_text("table.approvals")
    fresh_browser.shot("approvals-viewer")
    page.click("#who .sign-out")
    _sign_in(fresh_browser, team, "root", "/models/model-a")
    page.wait_for_selector("table.approvals button.approve", timeout=20_000)
    assert page.locator("table.approvals button.reject").count() == 1
