"""A real mloop server over demo-like runs, and one headless Chromium page on it, shared by the UI tests.

The runs are logged through the SDK as a user would: a sweep whose children fold under it, a flow-like run with
tasks with runs of their own, standalone runs with params (strings, numbers, some missing), metric histories,
system metrics, artifacts (text, JSON, an image, an HTML report), a dataset, a registered model version, and a
run whose name and tag try to run script in the page.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from mloop.config import Settings
from tests.browser import CHROMIUM_ARGS, chromium, playwright
from tests.server.conftest import serve

XSS = "<img src=x onerror=\"document.body.dataset.pwned='1'\">"
EXPERIMENT = "eta"


@dataclass
class UiData:
    url: str
    experiment_id: str
    runs: dict[str, str]  # name -> run id
    model: tuple[str, int] | None = None


@dataclass
class Browser:
    page: Any
    shots: Path
    problems: list[str] = field(default_factory=list)  # console errors, failed requests, CSP violations

    def open(self, url: str) -> Any:
        """Go to ``url`` and wait until its page has rendered; problems seen so far are forgotten."""
        self.problems.clear()
        self.page.goto(url)
        self.page.wait_for_selector("main[data-state=ready]", timeout=20_000)
        return self.page

    def until(self, expression: str, timeout: float = 15) -> Any:
        """Poll ``expression`` (a function of no arguments) in the page until it is truthy; its value.

        Playwright's wait_for_function evaluates a string in the page, which the UI's policy (no eval) refuses.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.page.evaluate(expression)
            if found or time.monotonic() > deadline:
                assert found, f"still false after {timeout} s: {expression}"
                return found
            time.sleep(0.05)

    def shot(self, name: str) -> Path:
        """A screenshot under the test's folder, and in $MLOOP_TEST_UI_SHOTS when set (to look at them)."""
        target = self.shots / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=True)
        extra = os.environ.get("MLOOP_TEST_UI_SHOTS")
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(target, Path(extra) / target.name)
        return target


def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([0, 1, 2, 3], [3, 1, 2, 0.5])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _log_candidates(client: Any, parent: Any, rng: np.random.Generator, runs: dict[str, str]) -> None:
    for i, (alpha, solver) in enumerate([(0.1, "svd"), (1.0, "cholesky"), (10.0, None)]):
        with client.start_run(EXPERIMENT, f"sweep-{i}", parent=parent,
                              params={"alpha": alpha, **({"solver": solver} if solver else {})}) as child:
            for step in range(60):
                child.log_metric("val_rmse", 5 + alpha / 10 + 3 * np.exp(-step / 12) + rng.normal(0, 0.05), step=step)
            child.log_metric("val_mae", 3 + alpha / 20, step=59)
            runs[f"sweep-{i}"] = child.run_id


def log_demo_runs(settings: Settings, tmp: Path) -> tuple[str, dict[str, str], tuple[str, int] | None]:
    """Log the demo-like runs into ``settings``' stores; (experiment id, run ids by name, model version)."""
    import mloop

    client = mloop.configure(home=settings.home, tracking_uri="")
    rng = np.random.default_rng(7)
    runs: dict[str, str] = {}
    with client.start_run(EXPERIMENT, "sweep", params={"search": "grid"}) as sweep:
        _log_candidates(client, sweep, rng, runs)
        sweep.log_metric("best_val_rmse", 5.2)
        runs["sweep"] = sweep.run_id
    with client.start_run(EXPERIMENT, "train-flow", tags={"mloop.flow": "TrainFlow"}) as flow:
        runs["train-flow"] = flow.run_id
        for task in ("start", "fit", "end"):
            with client.start_run(EXPERIMENT, f"task-{task}", parent=flow, params={"step": task}) as step:
                runs[f"task-{task}"] = step.run_id
                if task == "fit":
                    with client.start_run(EXPERIMENT, "fit-ridge", params={"algorithm": "ridge"}) as fit:
                        fit.log_metric("val_rmse", 6.1)
                        runs["fit-ridge"] = fit.run_id
    # as a flow's candidates: tracked in this experiment, their parent (the task) in the flow's own experiment
    with client.start_run("TrainFlow", "task-elsewhere") as task:
        with client.start_run(EXPERIMENT, "candidate", parent=task, params={"algorithm": "lasso"}) as candidate:
            candidate.log_metric("val_rmse", 7.0)
        runs["task-elsewhere"], runs["candidate"] = task.run_id, candidate.run_id
    model = None
    for name, algorithm, lr, rmse in [("ridge", "ridge", None, 6.4), ("forest", "random_forest", 0.3, 5.6),
                                      ("hgb", "hist_gradient_boosting", 0.1, 5.1)]:
        params = {"algorithm": algorithm, **({"learning_rate": lr} if lr is not None else {})}
        with mloop.start_run(experiment=EXPERIMENT, name=name, params=params, tags={"team": "maps"}) as run:
            for step in range(200):
                run.log_metrics({"loss": rmse + 4 * np.exp(-step / 40) + rng.normal(0, 0.08),
                                 "system/cpu_percent": 40 + 10 * np.sin(step / 9)}, step=step)
            run.log_metrics({"val_rmse": rmse, "val_mae": rmse * 0.7})
            runs[name] = run.run_id
            if name == "hgb":
                model = _artifacts_and_model(run, tmp)
    # names are checked (letters, digits, _-./:), free text is not: the tag, the param and the description try
    with mloop.start_run(experiment=EXPERIMENT, name="xss", tags={"note": XSS}, params={"algorithm": XSS},
                         description=XSS) as run:
        run.log_metric("val_rmse", 9.9)
        runs["xss"] = run.run_id
    experiment_id = client.get_experiment(EXPERIMENT).experiment_id
    client.writer.settle()
    return experiment_id, runs, model


def _artifacts_and_model(run: Any, tmp: Path) -> tuple[str, int]:
    import pandas as pd
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    run.log_text("first line\nsecond line <b>not bold</b>\n", "notes/readme.txt")
    run.log_dict({"val_rmse": 5.1, "features": ["age", "bmi"], "label": XSS}, "metrics.json")
    image = tmp / "curve.png"
    image.write_bytes(_png())
    run.log_artifact(image, "plots/curve.png")
    run.log_text("<html><body><h1 id='report'>Drift report</h1><p>all good</p></body></html>", "report.html")
    data = load_diabetes(as_frame=True)
    frame = data.frame.head(200).copy()
    frame.loc[frame.index[::10], "bmi"] = np.nan  # 10% missing
    run.log_input(pd.DataFrame(frame), name="diabetes", context="train")
    version = run.log_model(Ridge(alpha=1.0).fit(data.data.head(200), data.target.head(200)), name="eta-model")
    return version.name, int(version.version)


@pytest.fixture(scope="session")
def ui_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiData]:
    home = tmp_path_factory.mktemp("ui-home")
    settings = Settings.load(home=str(home), tracking_uri="")
    experiment_id, runs, model = log_demo_runs(settings, tmp_path_factory.mktemp("ui-files"))
    for live in serve(settings):
        yield UiData(live.url, experiment_id, runs, model)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    executable = chromium()
    launched = playwright().chromium.launch(
        executable_path=executable, args=CHROMIUM_ARGS)
    try:
        yield watched(launched.new_page(viewport={"width": 1400, "height": 900}), tmp_path_factory.mktemp("ui-shots"))
    finally:
        launched.close()


def watched(page: Any, shots: Path) -> Browser:
    """``page`` kept offline, with its console errors, page errors and failed requests collected as problems."""
    found = Browser(page, shots)
    # no request may leave this machine: the pages must work offline
    page.route("**/*", lambda route: route.continue_() if _local(route.request.url) else route.abort())
    page.on("console", lambda m: found.problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: found.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: found.problems.append(f"failed: {r.url}"))
    return found


@pytest.fixture
def fresh_browser(browser: Browser, tmp_path: Path) -> Iterator[Browser]:
    """A page in a context of its own (no cookies of other tests), closed after the test."""
    context = browser.page.context.browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield watched(context.new_page(), tmp_path)
    finally:
        context.close()


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost")
