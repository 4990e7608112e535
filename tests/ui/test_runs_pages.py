"""The runs table (sort, filter with OR, fold children, choose columns, page), the compare view over three runs
read from the Plotly traces in the page, and the escaping of every user-provided string."""

from __future__ import annotations

from urllib.parse import quote

from tests.ui.conftest import XSS, Browser, UiData


def names(page) -> list[str]:
    return page.eval_on_selector_all("table.runs tbody tr td.name > a", "links => links.map(a => a.textContent)")


def runs_url(ui_data: UiData, query: str = "") -> str:
    return f"{ui_data.url}/experiments/{ui_data.experiment_id}" + (f"?{query}" if query else "")


def test_sort_by_a_metric_column_both_ways(ui_data: UiData, browser: Browser) -> None:
    page = browser.open(runs_url(ui_data, "filter=" + quote("params.algorithm != ''")))
    header = page.locator("th[data-col='metrics.val_rmse']")
    if header.count() == 0:  # not a default column: choose it
        page.locator("details.chooser summary").click()
        page.locator("details.chooser input[value='metrics.val_rmse']").check()
        header = page.locator("th[data-col='metrics.val_rmse']")
    header.click()
    browser.until("() => location.search.includes('ASC')")
    browser.until("() => document.querySelector('main').dataset.state === 'ready'")
    page.wait_for_selector("table.runs")
    browser.until("() => [...document.querySelectorAll('table.runs td.name > a')][0]?.textContent === 'hgb'")
    assert names(page)[:4] == ["hgb", "forest", "fit-ridge", "ridge"]
    page.locator("th[data-col='metrics.val_rmse']").click()
    browser.until("() => [...document.querySelectorAll('table.runs td.name > a')][0]?.textContent === 'xss'")
    assert "order=metrics.val_rmse+DESC" in page.url or "order=metrics.val_rmse%20DESC" in page.url


def test_filter_with_or_and_parentheses_and_a_clear_error(ui_data: UiData, browser: Browser) -> None:
    page = browser.open(runs_url(ui_data))
    page.fill("form.filter input", "(params.algorithm = 'ridge' or tags.team = 'maps') and metrics.val_rmse < 6")
    page.click("form.filter button")
    browser.until("() => location.search.includes('filter=')")
    browser.until("() => document.querySelectorAll('table.runs tbody tr').length === 2")
    assert sorted(names(page)) == ["forest", "hgb"]
    browser.shot("runs-filtered")
    shared = page.url
    page.fill("form.filter input", "metrics.val_rmse <")
    page.click("form.filter button")
    error = page.wait_for_selector(".error")
    assert "Invalid filter" in error.inner_text() and "position" in error.inner_text()
    reopened = browser.open(shared)  # the URL shares what was on screen
    browser.until("() => document.querySelectorAll('table.runs tbody tr').length === 2")
    assert "params.algorithm" in reopened.locator("form.filter input").input_value()


def test_children_fold_under_their_parent_at_every_depth(ui_data: UiData, browser: Browser) -> None:
    page = browser.open(runs_url(ui_data))
    top = names(page)
    assert "sweep" in top and "train-flow" in top and "sweep-0" not in top and "task-fit" not in top
    flow = page.locator(f"tr[data-run='{ui_data.runs['train-flow']}']")
    flow.locator("button.fold").click()
    page.wait_for_selector(f"tr[data-run='{ui_data.runs['task-fit']}'][data-depth='1']")
    task = page.locator(f"tr[data-run='{ui_data.runs['task-fit']}']")
    task.locator("button.fold").click()
    page.wait_for_selector(f"tr[data-run='{ui_data.runs['fit-ridge']}'][data-depth='2']")
    browser.shot("runs-unfolded")
    flow.locator("button.fold").click()  # folding the flow folds its tasks and their runs
    assert page.locator(f"tr[data-run='{ui_data.runs['fit-ridge']}']").count() == 0
    assert page.locator(f"tr[data-run='{ui_data.runs['task-fit']}']").count() == 0


def test_column_chooser_adds_and_removes_columns_in_the_url(ui_data: UiData, browser: Browser) -> None:
    page = browser.open(runs_url(ui_data))
    page.locator("details.chooser summary").click()
    page.locator("details.chooser input[value='tags.team']").check()
    page.wait_for_selector("th[data-col='tags.team']")
    assert "tags.team" in page.url
    page.locator("details.chooser input[value='tags.team']").uncheck()
    assert page.locator("th[data-col='tags.team']").count() == 0
    browser.shot("runs")


def test_compare_three_runs_overlays_their_metrics(ui_data: UiData, browser: Browser) -> None:
    page = browser.open(runs_url(ui_data, "filter=" + quote("tags.team = 'maps'")))
    for name in ("ridge", "forest", "hgb"):
        page.locator(f"tr[data-run='{ui_data.runs[name]}'] td.pick input").check()
    page.click("text=Compare selected")
    page.wait_for_selector("main[data-state=ready] .chart[data-key=loss][data-points]")
    loss = page.evaluate("""() => document.querySelector('.chart[data-key=loss]').data
        .map(t => ({name: t.name, n: t.x.length, last: t.y[t.y.length - 1]}))""")
    assert [t["n"] for t in loss] == [200, 200, 200]
    assert [t["name"].split(" ")[0] for t in loss] == ["ridge", "forest", "hgb"]  # in the order picked
    bars = page.evaluate("() => Array.from(document.querySelector('.chart[data-key=val_rmse]').data[0].y)")
    assert bars == [6.4, 5.6, 5.1]
    page.wait_for_selector("#parallel[data-points]")
    parallel = page.evaluate("() => document.querySelector('#parallel').data.map(t => Array.from(t.x))")
    assert len(parallel) == 3 and parallel[0][-1] == "metric loss"
    page.wait_for_selector("#scatter[data-points]")
    differs = page.eval_on_selector_all("table.compare-params tr.differs", "rows => rows.map(r => r.dataset.key)")
    assert differs == ["algorithm", "learning_rate"]
    browser.shot("compare")
    assert not browser.problems, browser.problems


def test_user_text_is_shown_as_text_never_run(ui_data: UiData, browser: Browser) -> None:
    run = ui_data.runs["xss"]
    for url in (runs_url(ui_data, "cols=params.algorithm,tags.note"), f"{ui_data.url}/runs/{run}",
                f"{ui_data.url}/compare?runs={run},{ui_data.runs['hgb']}"):
        page = browser.open(url)
        page.wait_for_timeout(300)
        assert XSS in page.locator("main").inner_text(), url
        assert page.locator("main img[src=x]").count() == 0
        assert page.evaluate("() => document.body.dataset.pwned") is None
    # the labels Plotly draws (parallel coordinates' axis ends) show the text as written, quotes and all
    page.wait_for_selector("#parallel[data-points]")
    assert XSS in page.locator("#parallel").text_content()
    assert page.locator("#parallel image, #parallel img").count() == 0
    browser.shot("xss")


def test_a_run_whose_parent_is_in_another_experiment_is_top_level_and_names_it(ui_data: UiData,
                                                                                browser: Browser) -> None:
    page = browser.open(runs_url(ui_data))
    row = page.locator(f"tr[data-run='{ui_data.runs['candidate']}'][data-depth='0']")
    assert row.count() == 1
    assert row.locator(f"a[href='/runs/{ui_data.runs['task-elsewhere']}']").count() == 1
