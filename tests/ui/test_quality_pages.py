"""Data-quality pages: the schema and profile of a run's logged data set and of a model version's training
data, rendered as a column table and one histogram per column; markup in a category stays text."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from mloop.config import Settings
from tests.server.conftest import serve
from tests.ui.conftest import XSS, Browser


@pytest.fixture(scope="module")
def quality(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(server url, run id, model name): wine data with 10% missing alcohol and a text column, logged in a run
    and attached to the version registered from it."""
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    import mloop
    from mloop.registry import registry_for
    from mloop.validation.attach import attach_to_model_version, log_dataset

    settings = Settings.load(home=str(tmp_path_factory.mktemp("quality-home")), tracking_uri="")
    client = mloop.configure(home=settings.home, tracking_uri="")
    wine = load_wine(as_frame=True)
    frame = wine.frame.copy()
    frame["cellar"] = np.where(frame.index % 3 == 0, XSS, np.where(frame.index % 3 == 1, "north", "south"))
    frame.loc[frame.index[::10], "alcohol"] = np.nan
    with mloop.start_run(experiment="wine", name="fit") as run:
        log_dataset(run, frame)
        model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(wine.data, wine.target)
        version = run.log_model(model, name="wine")
        run_id = run.run_id
    client.writer.settle()
    attach_to_model_version("wine", version.version, data=frame, registry=registry_for(settings))
    for live in serve(settings):
        yield live.url, run_id, "wine"


def test_a_runs_data_set_shows_schema_profile_and_histograms(quality, browser: Browser) -> None:
    url, run_id, _ = quality
    page = browser.open(f"{url}/quality/runs/{run_id}")
    rows = {r.split("\t")[0]: r.split("\t") for r in page.locator("table.quality tbody tr").all_inner_texts()}
    assert "alcohol" in rows and "cellar" in rows and len(rows) == 15
    assert rows["alcohol"][3] == "10.1%"  # 18 of 178 missing
    assert XSS in page.locator(".chart[data-key=cellar]").inner_text() or page.evaluate(
        "() => document.querySelector('.chart[data-key=cellar]').data[0].x.some(x => x.includes('&lt;img'))")
    browser.until("() => document.querySelectorAll('.chart .main-svg').length >= 15")
    browser.shot("quality-run")
    assert page.evaluate("document.body.dataset.pwned") is None
    assert not browser.problems, browser.problems


def test_a_model_versions_training_data_and_a_missing_one(quality, browser: Browser) -> None:
    url, _, model = quality
    page = browser.open(f"{url}/models/{model}/versions/1")
    page.click("text=training data quality")
    browser.until("() => location.pathname === '/quality/models/wine/versions/1'"
                  " && document.querySelector('main').dataset.state === 'ready'")
    assert page.locator("h1").inner_text() == "Training data of wine v1"
    assert page.locator("table.quality tbody tr").count() == 15
    browser.shot("quality-version")
    missing = browser.open(f"{url}/quality/models/{model}/versions/7")
    assert "No version 7" in missing.locator(".error").inner_text() or "7" in missing.locator(".error").inner_text()
