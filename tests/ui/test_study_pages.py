"""The studies list and a study's page over a real study: 12 trials of mloop.tune on SQLite, some pruned, one
categorical choice carrying markup. The charts' Plotly traces are read back and checked against the REST API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mloop.config import Settings
from mloop.ui import study_url as study_page
from tests.server.conftest import serve
from tests.ui.conftest import XSS, Browser

optuna = pytest.importorskip("optuna")

STUDY = "ridge-search"
NESTED = "team/quick"


def _objective(trial: Any) -> float:
    """Trials with x < 0 report ~100 from their first step on, so the threshold pruner stops them at once."""
    x = trial.params["x"]
    for step in range(4):
        trial.report(100.0 - step if x < 0 else abs(x - 2) + 1.0 / (step + 1), step)
    return abs(x - 2) + (0.5 if trial.params["kind"] == XSS else 0.0)


@pytest.fixture(scope="module")
def study_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import mloop

    home = tmp_path_factory.mktemp("study-home")
    mloop.configure(home=str(home), tracking_uri="")
    mloop.tune(_objective, {"x": ("float", -10.0, 10.0), "kind": [XSS, "plain"]}, n_trials=12, study=STUDY,
               sampler=optuna.samplers.RandomSampler(seed=3), pruner=optuna.pruners.ThresholdPruner(upper=50.0))
    # a study name may hold '/', as any key: its page and the API must still find it
    mloop.tune(lambda t: (t.params["x"] - 1) ** 2, {"x": ("float", -3.0, 3.0)}, n_trials=3, study=NESTED)
    mloop.client().writer.settle()
    for live in serve(Settings.load(home=str(home), tracking_uri="")):
        yield live.url


def _trace(page: Any, chart: str, index: int) -> dict[str, list[Any]]:
    return page.evaluate("""([chart, index]) => {
        const t = document.getElementById(chart).data[index];
        return {name: t.name, x: Array.from(t.x), y: Array.from(t.y), stopped: t.customdata || null};
    }""", [chart, index])


def test_the_studies_list_counts_trials_by_state(study_url: str, browser: Browser) -> None:
    listed = httpx.get(f"{study_url}/api/tuning/studies", timeout=10).json()
    page = browser.open(f"{study_url}/studies")
    assert page.locator("table.studies tbody tr").count() == len(listed) == 2
    row = page.locator("table.studies tbody tr", has=page.locator(f"a[href='/studies/{STUDY}']"))
    cells = row.locator("td").all_inner_texts()
    counts = next(s for s in listed if s["name"] == STUDY)["trials"]
    assert cells[0] == STUDY and cells[1] == "minimize"
    assert [int(c) for c in cells[3:6]] == [counts["complete"], counts["pruned"], counts["fail"]]
    assert counts["pruned"] >= 2 and counts["complete"] >= 5
    assert float(cells[7]) == pytest.approx(next(s for s in listed if s["name"] == STUDY)["best_value"], rel=1e-4)
    assert page.locator("nav a.current").inner_text() == "Studies"
    browser.shot("study-list")
    page.locator(f"table.studies a[href='/studies/{STUDY}']").click()
    page.wait_for_selector("#trials[data-points]")
    assert page.locator("h1").inner_text() == STUDY
    assert not browser.problems, browser.problems


def test_the_study_page_charts_the_trials_the_api_holds(study_url: str, browser: Browser) -> None:
    study = httpx.get(f"{study_url}/api/tuning/studies/{STUDY}", timeout=10).json()
    importances = httpx.get(f"{study_url}/api/tuning/studies/{STUDY}/importances", timeout=10).json()
    page = browser.open(study_page(study_url, STUDY))
    page.wait_for_selector("#trials[data-points]")
    page.wait_for_selector("#parallel[data-points]")
    done = [t for t in study["trials"] if t["state"] == "complete"]
    pruned = [t for t in study["trials"] if t["state"] == "pruned"]
    completed, best_line, stopped = (_trace(page, "trials", i) for i in range(3))
    assert completed["x"] == [t["number"] for t in done] and completed["y"] == [t["value"] for t in done]
    assert stopped["x"] == [t["number"] for t in pruned]
    assert all(y > 90 for y in stopped["stopped"])  # where they stopped: their first, hopeless report
    assert max(stopped["y"]) < 1.2 * max(t["value"] for t in done)  # drawn at the edge of the completed ones
    best = min(done, key=lambda t: t["value"])
    assert best_line["y"][-1] == best["value"] and best_line["y"] == sorted(best_line["y"], reverse=True)
    assert set(importances) == {"x", "kind"}
    bars = _trace(page, "importances", 0)
    assert dict(zip(bars["y"], bars["x"], strict=True)) == pytest.approx(importances)
    assert page.locator("#parallel").get_attribute("data-points") == str(len(done))
    rows = page.locator("table.trials tbody tr")
    assert rows.count() == len(study["trials"])
    assert page.locator("table.trials tr.best").get_attribute("data-number") == str(best["number"])
    for trial in study["trials"]:
        assert page.locator(f"table.trials a[href='/runs/{trial['run_id']}']").count() == 1
    browser.shot("study-page")
    assert not browser.problems, browser.problems


def test_a_param_value_carrying_markup_renders_as_text(study_url: str, browser: Browser) -> None:
    page = browser.open(study_page(study_url, STUDY))
    page.wait_for_selector("#parallel[data-points]")
    page.locator("#trials").hover()
    assert XSS in page.locator("table.trials").inner_text()
    labels = page.locator("#parallel .annotation-text").all_text_contents()
    assert XSS in labels, labels  # the axis's category, as written
    assert page.locator("main img").count() == 0
    assert page.evaluate("() => document.body.dataset.pwned") is None
    assert not browser.problems, browser.problems


def test_a_trial_links_to_its_run(study_url: str, browser: Browser) -> None:
    page = browser.open(study_page(study_url, STUDY))
    best = page.locator("table.trials tr.best")
    run_id = best.locator("a").get_attribute("href").rsplit("/", 1)[1]
    best.locator("a").click()
    page.wait_for_url(f"**/runs/{run_id}")
    page.wait_for_selector("main[data-state=ready] .facts")
    assert page.locator(".facts").inner_text().count("child of") == 1


def test_a_study_whose_name_holds_a_slash_has_a_page(study_url: str, browser: Browser) -> None:
    page = browser.open(f"{study_url}/studies")
    page.locator("table.studies a", has_text=NESTED).click()
    page.wait_for_selector("#trials[data-points='3']")
    assert page.locator("h1").inner_text() == NESTED and page.url.endswith("/studies/team%2Fquick")
    assert page.locator("table.trials tbody tr").count() == 3
    assert not browser.problems, browser.problems
