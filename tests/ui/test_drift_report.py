"""The drift report on a model version's data-quality page: a later run's data against the version's training
profile, per column and as mloop.drift's HTML report in a sandboxed frame; and the API's clear refusals."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from mloop.config import Settings
from tests.server.conftest import serve
from tests.ui.conftest import XSS, Browser


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(server url, training run id, later run id): wine v1 trained on the wine data; a later run logged the same
    columns with alcohol shifted up by two standard deviations as its data set 'recent'."""
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    import mloop
    from mloop.validation.attach import log_dataset

    settings = Settings.load(home=str(tmp_path_factory.mktemp("drift-home")), tracking_uri="")
    client = mloop.configure(home=settings.home, tracking_uri="")
    wine = load_wine(as_frame=True)
    frame = wine.data.copy()
    frame["cellar"] = np.where(frame.index % 2 == 0, XSS, "north")
    with mloop.start_run(experiment="wine", name="fit") as run:
        log_dataset(run, frame)
        run.log_model(DecisionTreeClassifier(max_depth=3, random_state=0).fit(wine.data, wine.target), name="wine")
        training = run.run_id
    later = frame.drop(columns=["proline"]).assign(alcohol=frame["alcohol"] + 2 * frame["alcohol"].std())
    with mloop.start_run(experiment="wine", name="last-week") as run:
        log_dataset(run, later, name="recent")
        recent = run.run_id
    client.writer.settle()
    for live in serve(settings):
        yield live.url, training, recent


def test_the_drift_of_a_later_run_is_rendered_with_its_report(shifted, browser: Browser) -> None:
    url, _, recent = shifted
    page = browser.open(f"{url}/quality/models/wine/versions/1")
    page.fill("form.drift-form input[name=run]", recent)
    page.fill("form.drift-form input[name=dataset]", "recent")
    page.click("form.drift-form button[type=submit]")
    browser.until("() => document.querySelector('.drift-result').dataset.state === 'ready'")
    rows = {r.get_attribute("data-column"): r.inner_text() for r in page.locator("table.drift tbody tr").all()}
    assert "drifted" in rows["alcohol"] and "stable" in rows["magnesium"]
    assert "proline" not in rows and "proline" in page.inner_text(".drift-result")  # left out, and said so
    assert "against=" in page.url and "dataset=recent" in page.url  # the URL shares what is on screen
    frame = page.wait_for_selector(".drift-result iframe").content_frame()
    frame.wait_for_selector("#mloop-drift-result", state="attached", timeout=20_000)
    assert "Drift of run" in frame.locator("h1").inner_text()
    frame.wait_for_selector(".main-svg", timeout=30_000)  # the report's own charts were drawn
    page.locator(".drift-result iframe").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    browser.shot("quality-drift")
    page.locator(".drift-result iframe").screenshot(path=str(browser.shots / "quality-drift-report.png"))
    assert page.evaluate("document.body.dataset.pwned") is None
    assert page.get_attribute(".drift-result iframe", "sandbox") == "allow-scripts"
    assert not browser.problems, browser.problems


def test_the_report_opens_from_its_url_and_the_api_refuses_clearly(shifted, browser: Browser) -> None:
    url, training, recent = shifted
    page = browser.open(f"{url}/quality/models/wine/versions/1?against={recent}&dataset=recent")
    browser.until("() => document.querySelectorAll('table.drift tbody tr').length === 13")
    report = httpx.get(f"{url}/api/quality/models/wine/versions/1/drift.html",
                       params={"run": recent, "dataset": "recent"})
    assert "sandbox" in report.headers["content-security-policy"] and XSS not in report.text
    missing = httpx.get(f"{url}/api/quality/models/wine/versions/1/drift", params={"run": training,
                                                                                   "dataset": "recent"})
    assert missing.status_code == 404 and missing.json()["field"] == "dataset"
    bad = httpx.get(f"{url}/api/quality/models/wine/versions/1/drift", params={"run": "../x"})
    assert bad.status_code == 422 and "run" in bad.text
    page = browser.open(f"{url}/quality/models/wine/versions/1?against={training}&dataset=recent")
    assert "logged no profile for the data set 'recent'" in page.inner_text(".drift-result .error")
