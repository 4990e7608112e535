"""A run's page: params, tags, code version, metric charts read from the server's downsampled windows (zoom asks
for detail), system metrics, artifacts previewed (text, JSON, an image, an HTML report in a sandbox), the dataset,
and lineage to the model version made from it."""

from __future__ import annotations

import httpx

from tests.ui.conftest import Browser, UiData


def traces(page, key: str) -> list[dict]:
    return page.evaluate("""key => {
        const el = [...document.querySelectorAll('.chart')].find(e => e.dataset.key === key);
        return el.data.map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}));
    }""", key)


def test_run_page_shows_what_the_run_logged(ui_data: UiData, browser: Browser) -> None:
    page = browser.open(f"{ui_data.url}/runs/{ui_data.runs['hgb']}")
    assert page.locator("h1").inner_text() == "hgb"
    params = page.locator("section", has=page.locator("h2", has_text="Params"))
    assert "hist_gradient_boosting" in params.inner_text() and "learning_rate" in params.inner_text()
    assert "maps" in page.locator("section", has=page.locator("h2", has_text="Tags")).inner_text()
    assert "python" in page.locator("section", has=page.locator("h2", has_text="Code version")).inner_text()
    page.wait_for_selector(".chart[data-key=loss][data-points]")
    loss = traces(page, "loss")
    assert len(loss) == 1 and loss[0]["x"] == list(range(200)) and 4.9 < loss[0]["y"][-1] < 5.4
    cpu = traces(page, "system/cpu_percent")
    assert len(cpu[0]["x"]) == 200
    system = page.locator("section", has=page.locator("h2", has_text="System metrics"))
    assert system.locator(".chart").count() == 1
    datasets = page.locator("section", has=page.locator("h2", has_text="Datasets used")).inner_text()
    assert "diabetes" in datasets and "200" in datasets
    name, version = ui_data.model
    lineage = page.locator("section", has=page.locator("h2", has_text="Lineage"))
    assert lineage.locator(f"a[href='/models/{name}/versions/{version}']").count() == 1
    browser.shot("run")
    assert not browser.problems, browser.problems


def test_zooming_a_chart_fetches_the_visible_steps(ui_data: UiData, browser: Browser) -> None:
    page = browser.open(f"{ui_data.url}/runs/{ui_data.runs['hgb']}")
    page.wait_for_selector(".chart[data-key=loss][data-points]")
    page.evaluate("""() => {
        const el = document.querySelector('.chart[data-key=loss]');
        delete el.dataset.points;
        Plotly.relayout(el, {'xaxis.range[0]': 50, 'xaxis.range[1]': 60});
    }""")
    page.wait_for_selector(".chart[data-key=loss][data-points]")
    assert traces(page, "loss")[0]["x"] == list(range(50, 61))


def test_artifacts_preview_in_the_page(ui_data: UiData, browser: Browser) -> None:
    page = browser.open(f"{ui_data.url}/runs/{ui_data.runs['hgb']}")
    preview = page.locator(".preview")

    def pick(path: str) -> None:
        page.locator(f".artifacts li[data-path='{path}'] button.show").click()

    pick("notes/readme.txt")
    page.wait_for_selector(".preview pre")
    assert "second line <b>not bold</b>" in preview.locator("pre").inner_text()
    pick("metrics.json")
    browser.until("() => document.querySelector('.preview pre')?.textContent.includes('\"features\"')")
    assert "<img src=x onerror=" in preview.locator("pre").inner_text()  # shown as text: JSON's own escapes
    assert preview.locator("img").count() == 0
    pick("plots/curve.png")
    image = page.wait_for_selector(".preview img")
    browser.until("() => document.querySelector('.preview img').naturalWidth > 0")
    assert image.evaluate("img => img.naturalWidth") == 300
    browser.shot("run-artifact-image")
    pick("report.html")
    frame = page.wait_for_selector(".preview iframe").content_frame()
    frame.wait_for_selector("#report")
    assert frame.locator("#report").inner_text() == "Drift report"
    browser.shot("run-artifact-report")
    assert not browser.problems, browser.problems


def test_a_previewed_report_is_sandboxed_even_opened_directly(ui_data: UiData) -> None:
    url = f"{ui_data.url}/api/runs/{ui_data.runs['hgb']}/preview/report.html"
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200 and "Drift report" in answer.text
    assert answer.headers["content-security-policy"].startswith("sandbox")
    assert answer.headers["content-disposition"].startswith("inline")
    download = httpx.get(url.replace("/preview/", "/artifacts/"), timeout=10)
    assert download.headers["content-disposition"].startswith("attachment")
