"""The automation timeline in Chromium: every firing of a model's rules with its event, rule version, each action
with its result and time, the lineage to the version it promoted, and a stopped firing with its reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mloop.config import Settings
from tests.server.conftest import serve
from tests.ui.conftest import XSS, Browser

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
