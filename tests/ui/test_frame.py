"""The frame: pages are served at their own paths by one shell with a strict policy, assets come from this server,
and the experiments and runs pages render the runs logged through the SDK."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from tests.ui.conftest import EXPERIMENT, Browser, UiData


def test_every_page_path_answers_the_shell_with_a_strict_policy(ui_data: UiData) -> None:
    for path in ("/", f"/experiments/{ui_data.experiment_id}", f"/runs/{ui_data.runs['hgb']}", "/compare?runs=a,b"):
        answer = httpx.get(ui_data.url + path, timeout=10)
        assert answer.status_code == 200, path
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe-eval" not in policy and "default-src 'self'" in policy
        assert "<script type=\"module\" src=\"/ui/static/app.js" in answer.text
    plotly = httpx.get(ui_data.url + "/ui/vendor/plotly.min.js", timeout=10)
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert httpx.get(ui_data.url + "/ui/static/lib.js", timeout=10).status_code == 200


def test_other_paths_keep_the_api_answers(ui_data: UiData) -> None:
    assert httpx.get(ui_data.url + "/nothing-here", timeout=10).status_code == 404
    assert httpx.get(ui_data.url + "/api/nothing-here", timeout=10).status_code == 404
    assert httpx.post(ui_data.url + "/api/nothing-here", json={}, timeout=10).status_code == 404
    assert httpx.get(ui_data.url + "/health", timeout=10).json()["status"] == "ok"
    assert httpx.get(ui_data.url + "/docs", timeout=10).status_code == 200


def test_experiments_page_lists_the_experiment_with_its_runs(ui_data: UiData, browser: Browser) -> None:
    page = browser.open(ui_data.url + "/")
    row = page.locator("table.experiments tbody tr", has_text=EXPERIMENT)
    assert row.count() == 1
    browser.shot("experiments")
    row.locator("a").first.click()
    page.wait_for_selector("table.runs")
    assert page.url.endswith(f"/experiments/{ui_data.experiment_id}")
    assert not browser.problems, browser.problems


def test_the_login_seam_sends_back_only_to_a_page_of_this_site(ui_data: UiData, browser: Browser) -> None:
    for asked, expected in (("/runs/abc", "/runs/abc"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
                            ("https://evil.example", "/")):
        page = browser.open(f"{ui_data.url}/login?next={quote(asked, safe='')}")
        assert page.locator("main a").get_attribute("href") == expected, asked
