"""A model version's analysis page over real analyses: a census-like classifier (string categories, 10% nulls)
sliced by education, age and a workclass whose value carries markup, with sex as a sensitive feature; and a
diabetes regressor sliced by sex and binned bmi. The page's tables are checked against the analysis the version
stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mloop.config import Settings
from mloop.ui import analysis_url
from tests.server.conftest import serve
from tests.ui.conftest import XSS, Browser

pytest.importorskip("fairlearn")


@dataclass
class Served:
    url: str
    secret_run: str
    settings: Settings

    def stored(self, name: str) -> Any:
        """The analysis stored with version 1 of ``name``, read from the stores, not through the server."""
        from mloop.analysis import model_analysis
        from mloop.registry import registry_for

        return model_analysis(name, 1, registry=registry_for(self.settings))


def _census_model(train: Any) -> Any:
    """A logistic regression over one-hot categories and imputed numbers: quick to fit on a busy machine."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from tests.analysis.conftest import CATEGORICAL, NUMERIC

    prep = ColumnTransformer([
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                              OneHotEncoder(handle_unknown="ignore")), CATEGORICAL),
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC)])
    return make_pipeline(prep, LogisticRegression(max_iter=500)).fit(train[CATEGORICAL + NUMERIC], train["income"])


def _classifier() -> None:
    import mloop
    from tests.analysis.conftest import CATEGORICAL, adult_like

    data = adult_like(1600, seed=4)
    data[CATEGORICAL] = data[CATEGORICAL].astype(object)
    train, test = data.iloc[:1000], data.iloc[1000:].reset_index(drop=True)
    test.loc[test.index[::7], "workclass"] = XSS  # an unseen category: the model ignores it, the slice shows it
    with mloop.start_run(experiment="census", name="logistic") as run:
        run.log_model(_census_model(train), name="census")
    mloop.analyze("models:/census/1", test, label="income", slices=["education", "workclass", "age"],
                  sensitive=["sex"])


def _regressor() -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    import mloop

    data = load_diabetes(as_frame=True).frame  # sex is coded as two numbers: each is a slice
    features = [c for c in data.columns if c != "target"]
    with mloop.start_run(experiment="diabetes", name="ridge") as run:
        run.log_model(Ridge(alpha=0.5).fit(data[features].iloc[:300], data["target"].iloc[:300]), name="diabetes")
    mloop.analyze("models:/diabetes/1", data.iloc[300:], label="target", slices=["sex", "bmi"], bins=3)
    for alpha in (2.0, 3.0):  # v2 (its tags get tampered with) and v3, both left without an analysis
        with mloop.start_run(experiment="diabetes", name=f"ridge-{alpha}") as run:
            run.log_model(Ridge(alpha=alpha).fit(data[features].iloc[:300], data["target"].iloc[:300]),
                          name="diabetes")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    import mloop

    home = tmp_path_factory.mktemp("analysis-home")
    mloop.configure(home=str(home), tracking_uri="")
    _classifier()
    _regressor()
    with mloop.start_run(experiment="private", name="keys") as run:
        run.log_text("do-not-show-this", "secret.txt")
    mloop.client().writer.settle()
    settings = Settings.load(home=str(home), tracking_uri="")
    for live in serve(settings):
        yield Served(live.url, run.run_id, settings)


def test_the_slices_table_matches_the_stored_analysis(served: Served, browser: Browser) -> None:
    stored = served.stored("census")
    page = browser.open(analysis_url(served.url, "census", 1))
    page.wait_for_selector("#slices[data-points]")
    assert page.locator("h1").inner_text() == "Analysis of census v1"
    shown = page.evaluate("""() => [...document.querySelectorAll('table.slices tbody tr')].map(tr => ({
        slice: tr.dataset.slice, value: tr.dataset.value, count: Number(tr.dataset.count),
        accuracy: tr.querySelector('td.metric-accuracy').textContent}))""")
    assert len(shown) == len(stored.slices)
    by_key = {(r["slice"], r["value"]): r for r in shown}
    for s in stored.slices:
        row = by_key[(s["slice"], str(s["value"]))]
        assert row["count"] == s["count"]
        assert float(row["accuracy"]) == pytest.approx(s["metrics"]["accuracy"]["value"], rel=1e-4)
    gaps = [float(t) for t in page.locator("table.slices td.gap").all_inner_texts() if t]
    assert gaps == sorted(gaps, reverse=True)  # the slice furthest behind overall first
    overall = stored.overall["metrics"]["accuracy"]["value"]
    chart = page.evaluate("() => { const t = document.getElementById('slices').data[0];"
                          " return {y: Array.from(t.y), up: Array.from(t.error_y.array)}; }")
    worst = min(s["metrics"]["accuracy"]["value"] for s in stored.slices)
    assert chart["y"][0] == pytest.approx(worst) and all(u >= 0 for u in chart["up"])
    assert page.locator("#calibration[data-points]").count() == 1
    confusion = page.evaluate("() => document.getElementById('confusion').data[0].z")
    assert confusion == stored.confusion["matrix"]
    assert f"{stored.overall['count']} rows" in page.locator("section", has_text="Overall").first.inner_text()
    first = page.locator("table.overall tbody tr").first.locator("td").all_inner_texts()
    assert first[0] == "accuracy" and float(first[1]) == pytest.approx(overall, rel=1e-4)
    browser.shot("analysis-classifier")
    page.locator("select[name=metric]").select_option("auc")  # sorted by another metric's gap
    page.wait_for_selector("#slices[data-metric=auc]")
    auc_gaps = [float(t) for t in page.locator("table.slices td.gap").all_inner_texts() if t]
    assert auc_gaps == sorted(auc_gaps, reverse=True) and auc_gaps != gaps
    assert not browser.problems, browser.problems


def test_the_fairness_metrics_and_group_rates_are_shown(served: Served, browser: Browser) -> None:
    fairness = served.stored("census").fairness["sex"]
    page = browser.open(analysis_url(served.url, "census", 1))
    card = page.locator(".fairness[data-feature=sex]")
    text = card.inner_text()
    for key in ("demographic_parity_difference", "equalized_odds_difference", "equalized_odds_ratio"):
        assert key in text
    pairs = dict(r.split("\t") for r in card.locator("table.pairs tr").all_inner_texts())
    assert float(pairs["demographic_parity_difference"]) == pytest.approx(fairness["demographic_parity_difference"],
                                                                        rel=1e-4)
    card.locator(".chart.rates[data-points]").wait_for()
    bars = card.evaluate("c => { const t = c.querySelector('.chart.rates').data[0]; return [Array.from(t.x), t.y]; }")
    assert bars == [[g["group"] for g in fairness["groups"]], [g["selection_rate"] for g in fairness["groups"]]]
    for group in fairness["groups"]:
        row = card.locator(f"table.groups tr[data-group='{group['group']}']")
        assert float(row.locator("td.selection_rate").inner_text()) == pytest.approx(group["selection_rate"], rel=1e-4)
        assert row.locator("td").nth(1).inner_text() == str(group["count"])


def test_a_slice_value_carrying_markup_renders_as_text(served: Served, browser: Browser) -> None:
    page = browser.open(analysis_url(served.url, "census", 1))
    page.wait_for_selector("#slices[data-points]")
    assert page.locator("table.slices tr[data-slice=workclass]", has_text=XSS).count() == 1
    ticks = page.locator("#slices .xtick text").all_text_contents()
    assert any('workclass = <img src=x onerror="' in t for t in ticks), ticks  # the chart's text, as written
    assert not any("&quot;" in t or "&#34;" in t or "&lt;" in t for t in ticks), ticks
    assert page.locator("main img").count() == 0
    assert page.evaluate("() => document.body.dataset.pwned") is None
    assert not browser.problems, browser.problems


def test_a_regressor_shows_residuals_by_slice(served: Served, browser: Browser) -> None:
    stored = served.stored("diabetes")
    page = browser.open(analysis_url(served.url, "diabetes", 1))
    page.wait_for_selector("#residuals[data-points]")
    medians = page.evaluate("() => Array.from(document.getElementById('residuals').data[0].y)")
    assert sorted(medians) == pytest.approx(sorted(s["residual_p50"] for s in stored.slices))
    assert page.locator("#calibration").count() == 0 and "No sensitive features" in page.locator("main").inner_text()
    browser.shot("analysis-regressor")
    assert not browser.problems, browser.problems


def test_the_report_opens_sandboxed(served: Served, browser: Browser) -> None:
    page = browser.open(analysis_url(served.url, "census", 1))
    href = page.locator("a.report-link").get_attribute("href")
    answer = httpx.get(served.url + href, timeout=10)
    assert answer.status_code == 200 and "<html" in answer.text.lower()
    assert answer.headers["content-security-policy"].startswith("sandbox allow-scripts;")
    page.locator("details.report summary").click()
    frame = page.wait_for_selector("iframe.report")
    assert frame.get_attribute("sandbox") == "allow-scripts"
    frame.content_frame().wait_for_selector("body")
    assert "census" in frame.content_frame().locator("body").inner_text()
    browser.shot("analysis-report")


def test_a_tag_pointing_elsewhere_reads_nothing(served: Served) -> None:
    """Anyone who may tag a version must not make the server read another run's files through it."""
    base = f"{served.url}/api/registry/models/diabetes/versions/2"
    stolen = f"runs/{served.secret_run}/artifacts/secret.txt"
    patched = httpx.patch(base, json={"tags": {"mloop.analysis.html": stolen, "mloop.analysis": stolen}}, timeout=10)
    assert patched.status_code == 200, patched.text
    for path in ("/analysis", "/analysis/report"):
        answer = httpx.get(base + path, timeout=10)
        assert answer.status_code == 404 and "do-not-show-this" not in answer.text
        assert answer.json()["field"].startswith("mloop.analysis")
    missing = httpx.get(f"{served.url}/api/registry/models/nope/versions/1/analysis", timeout=10)
    assert missing.status_code == 404


def test_a_version_without_an_analysis_says_how_to_make_one(served: Served, browser: Browser) -> None:
    page = browser.open(f"{served.url}/models/diabetes/versions/3/analysis")
    assert "run mloop.analyze('models:/diabetes/3'" in page.locator("[role=alert]").inner_text()
    page = browser.open(f"{served.url}/models/nope/versions/1/analysis")
    assert "No registered model named 'nope'" in page.locator("[role=alert]").inner_text()
