"""Flow pages: the runs of each flow with status and the run they resumed, a run's graph of steps (a foreach's
fan-out, each step's state and what the resume reused), the tasks of a step with their artifacts, and a task's
logs, where markup printed by the step stays text."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from mloop.config import Settings
from tests.server.conftest import serve
from tests.ui.conftest import XSS, Browser

FLOW = f'''
from pathlib import Path
from mloop.flows import FlowSpec, step

class Train(FlowSpec):
    @step
    def start(self):
        self.candidates = ["a", "b", "c"]
        self.next(self.train, foreach="candidates")

    @step
    def train(self):
        print("training", self.input, {XSS!r})
        self.score = {{"a": 0.3, "b": 0.9, "c": 0.5}}[self.input]
        self.next(self.join)

    @step
    def join(self, inputs):
        self.best = max(inputs, key=lambda i: i.score).score
        self.next(self.evaluate)

    @step
    def evaluate(self):
        if (Path(__file__).parent / "fail").exists():
            raise RuntimeError("evaluation service unavailable")
        self.next(self.end)

    @step
    def end(self):
        pass
'''


@pytest.fixture(scope="module")
def flow_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(server url, failed run id, resumed run id)."""
    import mloop.flows as flows

    folder = tmp_path_factory.mktemp("flows")
    settings = Settings.load(home=str(folder / "home"), tracking_uri="")
    file = folder / "train_flow.py"
    file.write_text(textwrap.dedent(FLOW))
    (folder / "fail").touch()
    failed = flows.run(str(file), raise_on_failure=False, settings=settings)
    (folder / "fail").unlink()
    resumed = flows.resume(str(file), failed.id, settings=settings)
    for live in serve(settings):
        yield live.url, failed.id, resumed.id


def test_flow_runs_are_listed_with_status_and_origin(flow_runs, browser: Browser) -> None:
    url, failed, resumed = flow_runs
    page = browser.open(f"{url}/flows")
    rows = page.locator("table.flow-runs tbody tr")
    assert rows.count() == 2
    assert "finished" in rows.nth(0).inner_text() and failed[:12] in rows.nth(0).inner_text()
    assert "failed" in rows.nth(1).inner_text()
    browser.shot("flows")
    assert not browser.problems, browser.problems


def test_a_run_graph_shows_fan_out_reuse_states_and_logs(flow_runs, browser: Browser) -> None:
    url, failed, resumed = flow_runs
    page = browser.open(f"{url}/flows/{resumed}")
    steps = page.locator("svg.flow g.step")
    assert [s.get_attribute("data-step") for s in steps.all()] == ["start", "train", "join", "evaluate", "end"]
    assert page.locator("g.step[data-step=train]").get_attribute("data-tasks") == "3"
    assert "3 reused" in page.locator("g.step[data-step=train]").inner_html()
    assert page.locator("svg.flow path.edge").count() == 4
    page.locator("g.step[data-step=train]").click()
    tasks = page.locator("table.tasks tbody tr")
    assert tasks.count() == 3 and "from the resumed run" in tasks.nth(0).inner_text()
    assert "score" in tasks.nth(0).inner_text() and "step=train" in page.url
    tasks.nth(1).locator("button.logs-button").click()
    log = page.locator("pre.stdout")
    log.wait_for()
    assert "training b" in log.inner_text() and XSS in log.inner_text()
    browser.shot("flow-run")

    page = browser.open(f"{url}/flows/{failed}?step=evaluate")
    assert page.locator("g.step[data-step=evaluate]").get_attribute("data-state") == "failed"
    assert page.locator("g.step[data-step=end]").count() == 0
    assert "evaluation service unavailable" in page.locator("table.tasks").inner_text()
    browser.shot("flow-run-failed")
    assert page.evaluate("document.body.dataset.pwned") is None
    assert not browser.problems, browser.problems
