"""The automation timeline in Chromium: every firing of a model's rules with its event, rule version, each action
with its result and time, the lineage to the version it promoted, and a stopped firing with its reason; a rule
fired from the page by an editor, and paused and resumed by a maintainer."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mloop.config import Settings
from tests.server.conftest import serve
from tests.ui.conftest import XSS, Browser
from tests.ui.test_login_pages import Team, _sign_in

RULES = """
rules:
  - name: promote-by-hand
    given: {model: ct-model}
    trigger: {kind: manual}
    actions:
      - notify: {message: promoting the newest}
      - promote: {alias: champion}
  - name: gate-by-hand
    given: {model: ct-model}
    trigger: {kind: manual}
    actions:
      - evaluate: {holdout: nowhere.parquet, target: y, metric: mae}
      - promote: {alias: champion}
"""


@pytest.fixture(scope="module")
def fired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ct-model v1 and v2; promote-by-hand fired (v2 becomes champion), then gate-by-hand, which stops: no
    challenger is left. The first event's payload carries markup, which must stay text."""
    import numpy as np
    from sklearn.linear_model import Ridge

    import mloop
    from mloop.automation import apply_rules, fire_manual

    home = tmp_path_factory.mktemp("automation-home")
    settings = Settings.load(home=str(home), tracking_uri="")
    client = mloop.configure(home=str(home), tracking_uri="")
    x, y = np.arange(40.0).reshape(20, 2), np.arange(20.0)
    for alpha in (1.0, 0.5):
        with mloop.start_run(experiment="ct", name=f"fit-{alpha}") as run:
            run.log_model(Ridge(alpha=alpha).fit(x, y), name="ct-model")
    client.writer.settle()
    apply_rules(RULES, settings=settings)
    fire_manual("promote-by-hand", {"reason": XSS}, settings=settings)
    fire_manual("gate-by-hand", {"reason": "after the promotion"}, settings=settings)
    for live in serve(settings):
        yield live.url


def test_a_models_timeline_shows_each_firing_its_actions_and_lineage(fired: str, browser: Browser) -> None:
    page = browser.open(f"{fired}/models/ct-model/automation")
    assert page.locator("h1").inner_text() == "Automation of ct-model"
    firings = page.locator("ol.timeline > li")
    assert firings.count() == 2
    stopped, done = firings.nth(0), firings.nth(1)  # newest first
    assert stopped.get_attribute("data-rule") == "gate-by-hand"
    assert "no challenger" in stopped.locator(".reason").inner_text()
    assert done.get_attribute("data-rule") == "promote-by-hand" and "v1" in done.locator(".what").inner_text()
    actions = done.locator("table.actions tbody tr")
    assert [actions.nth(i).get_attribute("data-kind") for i in range(2)] == ["notify", "promote"]
    assert [actions.nth(i).get_attribute("data-status") for i in range(2)] == ["done", "done"]
    promoted = actions.nth(1).locator(".lineage a")
    assert promoted.inner_text() == "@champion → v2"
    assert promoted.get_attribute("href") == "/models/ct-model/versions/2"
    assert "UTC" in actions.nth(1).inner_text()  # when it finished
    done.locator("details.event summary").click()
    assert XSS in done.locator("details.event").inner_text()  # the payload's markup is shown as text
    assert page.evaluate("document.body.dataset.pwned") is None
    rules = page.locator("table.rules tbody tr")
    assert rules.count() == 2 and "notify → promote" in rules.nth(1).inner_text()
    browser.shot("automation-model")
    promoted.click()
    browser.until("() => location.pathname === '/models/ct-model/versions/2'")
    assert not browser.problems, browser.problems


def test_the_automation_page_lists_every_model_and_links_to_each_timeline(fired: str, browser: Browser) -> None:
    page = browser.open(f"{fired}/automation")
    assert page.locator("ol.timeline > li").count() == 2
    assert page.locator("nav a.current").inner_text() == "Automation"
    browser.shot("automation-all")
    page.click("table.rules tbody tr >> nth=0 >> a")
    browser.until("() => location.pathname === '/models/ct-model/automation'")
    model = browser.open(f"{fired}/models/ct-model")
    assert model.locator("a", has_text="automation timeline").get_attribute("href") == "/models/ct-model/automation"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """Auth on; ct-guarded (project A) with a manual rule; eve edits A, mia maintains A."""
    import dataclasses

    import numpy as np
    from sklearn.linear_model import Ridge

    import mloop
    from mloop.auth import AuthStore
    from mloop.automation import apply_rules
    from mloop.registry import registry_for

    home = tmp_path_factory.mktemp("automation-guarded")
    settings = dataclasses.replace(Settings.load(home=str(home), tracking_uri=""), auth=True)
    mloop.configure(home=str(home), tracking_uri="")
    with mloop.start_run(experiment="ct", name="fit") as run:
        run.log_model(Ridge().fit(np.arange(20.0).reshape(10, 2), np.arange(10.0)), name="ct-guarded")
    registry_for(settings).update_model("ct-guarded", tags={"project": "A"})
    apply_rules([{"name": "by-hand", "given": {"model": "ct-guarded"}, "trigger": {"kind": "manual"},
                  "actions": [{"notify": {"message": "fired from the page"}}]}], settings=settings)
    store = AuthStore(settings.db_url)
    tokens = {}
    for user, role in (("eve", "editor"), ("mia", "maintainer")):
        store.add_user(user)
        store.grant(user, "A", role)
        tokens[user] = store.create_token(user).text
    for live in serve(settings):
        yield Team(live.url, tokens, {}, {})


def _rule_row(browser: Browser, team: Team, user: str) -> object:
    _sign_in(browser, team, user, "/models/ct-guarded/automation")
    browser.page.wait_for_selector("main[data-state=ready]", timeout=20_000)
    browser.problems.clear()  # the 401s that sent the signed-out page to the login form
    return browser.page.locator("table.rules tbody tr[data-rule=by-hand]")


def test_an_editor_fires_a_rule_from_the_page_and_a_maintainer_pauses_it(guarded: Team,
                                                                          fresh_browser: Browser) -> None:
    page = fresh_browser.page
    row = _rule_row(fresh_browser, guarded, "eve")
    assert row.locator("button.fire").count() == 1 and row.locator("button.pause").count() == 0  # not a maintainer
    assert page.locator("ol.timeline > li").count() == 0
    row.locator("button.fire").click()
    page.wait_for_selector("ol.timeline > li[data-rule=by-hand]", timeout=20_000)
    assert page.locator("ol.timeline > li").count() == 1
    headers = {"Authorization": f"Bearer {guarded.tokens['eve']}"}
    (firing,) = httpx.get(f"{guarded.url}/api/automation/firings", headers=headers).json()
    assert firing["event"]["from"] == "web UI" and firing["trigger"] == "manual"
    assert httpx.post(f"{guarded.url}/api/automation/rules/by-hand/pause", headers=headers).status_code == 403
    page.context.clear_cookies()

    row = _rule_row(fresh_browser, guarded, "mia")
    row.locator("button.pause").click()
    page.wait_for_selector("table.rules tbody tr[data-rule=by-hand] button.resume", timeout=20_000)
    row = page.locator("table.rules tbody tr[data-rule=by-hand]")
    assert "paused" in row.inner_text() and row.locator("button.fire").count() == 0
    (rule,) = httpx.get(f"{guarded.url}/api/automation/rules", headers=headers).json()
    assert rule["paused"] is True
    fresh_browser.shot("automation-paused")
    row.locator("button.resume").click()
    page.wait_for_selector("table.rules tbody tr[data-rule=by-hand] button.pause", timeout=20_000)
    (rule,) = httpx.get(f"{guarded.url}/api/automation/rules", headers=headers).json()
    assert rule["paused"] is False
    assert not fresh_browser.problems, fresh_browser.problems
