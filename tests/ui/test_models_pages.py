"""The registry's pages: models searched by name and tag, a model's versions with their metrics, aliases and
environments, approvals decided from the page (and the API's refusal shown when the request was decided
behind the page's back), the audit log, and a version's lineage back to its run and data set."""

from __future__ import annotations

import httpx
import pytest

from tests.ui.conftest import XSS, Browser, UiData


@pytest.fixture(scope="module")
def pending(ui_data: UiData) -> dict[str, int]:
    """Two environments that need approval, a request to deploy the model's version to each, markup in the model's
    description and tag; the request id per environment."""
    name, version = ui_data.model
    requests = {}
    with httpx.Client(base_url=ui_data.url + "/api/registry", timeout=30) as api:
        api.patch(f"/models/{name}", json={"description": XSS, "tags": {"note": XSS}}).raise_for_status()
        api.put(f"/models/{name}/aliases/champion", json={"version": version}).raise_for_status()
        for env in ("production", "staging"):
            api.post("/environments", json={"env": env, "requires_approval": True}).raise_for_status()
            answer = api.post(f"/environments/{env}/deployments", json={"name": name, "version": version,
                                                                        "reason": "beats ridge"})
            answer.raise_for_status()
            requests[env] = answer.json()["id"]
    return requests


def test_models_are_searched_and_markup_stays_text(ui_data: UiData, browser: Browser, pending) -> None:
    name, version = ui_data.model
    page = browser.open(f"{ui_data.url}/models")
    assert page.locator("table.models tbody tr").count() == 1
    row = page.locator("table.models tbody tr").inner_text()
    assert "@champion" in row and XSS in row  # the tag's markup, shown as text
    assert page.locator("table.approvals tbody tr").count() == 2
    page.fill("input[name=q]", "note=<img")
    assert page.locator("table.models tbody tr").count() == 1
    page.fill("input[name=q]", "no-such-model")
    assert page.locator("table.models").count() == 0 and "No model matches" in page.inner_text("main")
    assert "q=no-such-model" in page.url  # what is on screen can be shared
    page.fill("input[name=q]", "")
    browser.shot("models")
    assert page.evaluate("document.body.dataset.pwned") is None
    assert not browser.problems, browser.problems


def test_approving_from_the_page_deploys_and_a_refusal_is_shown(ui_data: UiData, browser: Browser, pending) -> None:
    name, version = ui_data.model
    page = browser.open(f"{ui_data.url}/models/{name}")
    versions = page.locator("table.versions tbody tr")
    assert versions.count() == 1 and "@champion" in versions.inner_text()
    assert page.locator("table.versions th", has_text="val_rmse").count() == 1
    # decided elsewhere while the page was open: the page's button gets the API's refusal
    httpx.post(f"{ui_data.url}/api/registry/approvals/{pending['staging']}/approve", json={"comment": "cli"},
               timeout=10).raise_for_status()
    stale = page.locator(f"table.approvals tr[data-request='{pending['staging']}']")
    stale.locator("button.approve").click()
    refusal = stale.locator(".error")
    refusal.wait_for()
    assert "already approved" in refusal.inner_text()
    browser.shot("model-refused")
    ready = page.locator(f"table.approvals tr[data-request='{pending['production']}']")
    ready.locator("input[name=comment]").fill("checked the bias report")
    ready.locator("button.approve").click()
    browser.until("() => !document.querySelector(\"table.approvals tr[data-request]\")"
                  " && document.querySelector('main').dataset.state === 'ready'")
    assert "production" in page.locator("table.versions tbody tr").inner_text()
    audit = page.locator("table.audit").inner_text()
    assert "approval.approved" in audit and "checked the bias report" in audit
    browser.shot("model")
    assert page.evaluate("document.body.dataset.pwned") is None
    problems = [p for p in browser.problems if "409" not in p]  # the refusal's own response
    assert not problems, problems


def test_version_page_traces_back_to_its_run_and_data(ui_data: UiData, browser: Browser) -> None:
    name, version = ui_data.model
    page = browser.open(f"{ui_data.url}/models/{name}/versions/{version}")
    assert page.locator("h1").inner_text() == f"{name} v{version}"
    lineage = page.locator("section", has=page.locator("h2", has_text="Lineage"))
    assert lineage.locator(f"a[href='/runs/{ui_data.runs['hgb']}']").count() >= 1
    assert "diabetes" in lineage.inner_text() and "hist_gradient_boosting" in lineage.inner_text()
    assert "null" not in page.inner_text("main")  # nothing missing is written out
    browser.shot("model-version")
    assert not browser.problems, browser.problems


def test_models_versions_prints_each_versions_page(tmp_path) -> None:
    """With a server's URL configured (MLOOP_TRACKING_URI) each version's page on that server is printed."""
    import os
    import subprocess
    import sys

    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    import mloop
    from mloop.config import Settings
    from tests.server.conftest import serve

    mloop.configure(home=str(tmp_path), tracking_uri="")
    data = load_iris(as_frame=True)
    with mloop.start_run(experiment="iris", name="tree") as run:
        run.log_model(DecisionTreeClassifier(max_depth=2).fit(data.data, data.target), name="iris-tree")
    for server in serve(Settings.load(home=str(tmp_path))):  # the registry goes through it: a real server
        env = {**os.environ, "MLOOP_TRACKING_URI": server.url, "MLOOP_HOME": str(tmp_path / "client")}
        shown = subprocess.run([sys.executable, "-m", "mloop", "models", "versions", "iris-tree"],
                               capture_output=True, text=True, timeout=120, env=env)
        assert shown.returncode == 0, shown.stderr
        assert f"page v1: {server.url}/models/iris-tree/versions/1\n" in shown.stdout
    local = subprocess.run([sys.executable, "-m", "mloop", "models", "versions", "iris-tree", "--home",
                            str(tmp_path)], capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if k != "MLOOP_TRACKING_URI"})
    assert local.returncode == 0 and "page v1" not in local.stdout  # no server, no page
