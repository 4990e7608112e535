"""A step's artifacts opened from the flow page: a DataFrame's first rows and types, an array, plain values; a
pickle that would run code when loaded is never loaded (shown by type and size), and markup stays text."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mloop.config import Settings
from tests.server.conftest import serve
from tests.ui.conftest import XSS, Browser

FLOW = '''
import os
import numpy as np
import pandas as pd
from mloop.flows import FlowSpec, step

MARK = {mark!r}


class Trap:
    """Loading this pickle would run a command: the preview must never do it."""

    def __reduce__(self):
        return (os.system, ("touch " + MARK,))


class Prepare(FlowSpec):
    @step
    def start(self):
        self.frame = pd.DataFrame({{"zone": [1, 2, 3] * 10, "note": [{xss!r}, "b", "c"] * 10,
                                   "demand": np.linspace(0.5, 15.0, 30)}})
        self.weights = np.arange(12.0).reshape(3, 4)
        self.rmse = 4.25
        self.summary = {{"rows": 30, "kept": ["zone", "demand"], "label": {xss!r}}}
        self.trap = Trap()
        self.next(self.end)

    @step
    def end(self):
        pass
'''


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(server url, flow run id, the file the trap would create)."""
    import mloop.flows as flows

    folder = tmp_path_factory.mktemp("flow-artifacts")
    mark = folder / "trap-sprung"
    file = folder / "prepare_flow.py"
    file.write_text(textwrap.dedent(FLOW.format(mark=str(mark), xss=XSS)))
    settings = Settings.load(home=str(folder / "home"), tracking_uri="")
    run = flows.run(str(file), settings=settings)
    assert not mark.exists()
    for live in serve(settings):
        yield live.url, run.id, mark


def _open(browser: Browser, url: str, run_id: str, name: str):
    page = browser.page
    page.click(f"table.tasks button.artifact[data-name={name}]")
    browser.until(f"() => document.querySelector('.logs').dataset.state === 'ready' && "
                  f"document.querySelector('.artifact-preview[data-name={name}]')")
    return page.locator(".artifact-preview")


def test_tables_arrays_and_values_are_previewed(prepared, browser: Browser) -> None:
    url, run_id, _ = prepared
    page = browser.open(f"{url}/flows/{run_id}?step=start")
    frame = _open(browser, url, run_id, "frame")
    assert "30 rows; the first 20" in frame.inner_text()
    heads = frame.locator("table.artifact-rows thead th").all_inner_texts()
    assert [h.split("\n")[0] for h in heads] == ["zone", "note", "demand"] and "double" in heads[2]
    assert frame.locator("table.artifact-rows tbody tr").count() == 20
    assert XSS in frame.locator("table.artifact-rows tbody tr").first.inner_text()  # markup shown as text
    browser.shot("flow-artifact-frame")
    weights = _open(browser, url, run_id, "weights")
    assert "shape [3,4], dtype float64" in weights.inner_text() and "[0,1,2,3]" in weights.inner_text()
    assert "4.25" in _open(browser, url, run_id, "rmse").inner_text()
    summary = _open(browser, url, run_id, "summary")
    assert '"kept": [' in summary.inner_text() and "<img src=x onerror=" in summary.inner_text()
    assert page.evaluate("document.body.dataset.pwned") is None
    assert not browser.problems, browser.problems


def test_a_pickle_that_would_run_code_is_not_loaded(prepared, browser: Browser) -> None:
    url, run_id, mark = prepared
    browser.open(f"{url}/flows/{run_id}?step=start")
    trap = _open(browser, url, run_id, "trap")
    assert "could run code" in trap.locator(".opaque").inner_text() and "pickle" in trap.inner_text()
    browser.shot("flow-artifact-trap")
    answer = httpx.get(f"{url}/api/flows/runs/{run_id}/tasks/start/artifacts/trap/preview").json()
    assert answer["kind"] == "opaque" and "system" in answer["reason"]
    assert not mark.exists()  # the command inside the pickle never ran
    missing = httpx.get(f"{url}/api/flows/runs/{run_id}/tasks/start/artifacts/nothing/preview")
    assert missing.status_code == 404 and missing.json()["field"] == "name"
