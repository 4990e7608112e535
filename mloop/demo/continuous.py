"""Demo step: the loop closes. The served champion meets the changed last month; a monitor finds the drift; a
rule (GIVEN / WHEN / ACTIONS) retrains the flow on fresh data, gates the challenger on recent labelled traffic,
shadows it on the live server, promotes it, and notifies; the server keeps answering throughout. Printed as a
timeline."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.table import Table

from mloop.demo.runner import DemoContext
from mloop.demo.serving import _start, _wait_ready
from mloop.demo.tracking import TARGET, features
from mloop.demo.train_flow import MODEL_NAME

MONITOR = "trip-duration-live"
RULE = "retrain-on-drift"


def _rules(flow_file: str, data_dir: str, session: str) -> str:
    """The rule as a user writes it in YAML (``mloop automation apply rules.yaml``)."""
    return f"""
rules:
  - name: {RULE}
    given: {{model: {MODEL_NAME}}}
    trigger: {{kind: drift, monitor: {MONITOR}}}
    when: drift.share > 0.3
    actions:
      - run_flow: {{file: {flow_file}, parameters: {{data_dir: {data_dir}, candidates: [hgb-fast],
                    register_top: 1, session: {session}}}}}
      - evaluate: {{traffic: 1h, metric: mae, min_rows: 100}}
      - shadow: {{requests: 60, max_error_rate: 0.05, timeout: 2m}}
      - promote: {{alias: champion}}
      - notify: {{message: "{MODEL_NAME} retrained on the changed month and promoted"}}
"""


class _Traffic:
    """Clients sending the last month's trips one at a time, each answer labelled once the trip ended."""

    def __init__(self, url: str, rows: list[dict[str, Any]], truth: list[float], clients: int = 2) -> None:
        self.url, self.rows, self.truth = url, rows, truth
        self.seen: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(k, clients), daemon=True) for k in range(clients)]

    def __enter__(self) -> _Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _send(self, offset: int, step: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            i = offset
            while not self._stop.is_set():
                row = i % len(self.rows)
                try:
                    r = http.post("/predict", json=[self.rows[row]])
                    self.seen.append((r.status_code, r.headers.get("x-model-version", "")))
                    if r.status_code == 200:
                        http.post("/feedback", json={"feedback": [{"id": r.json()["ids"][0],
                                                                   "label": self.truth[row]}]})
                except httpx.HTTPError:
                    self.seen.append((0, ""))
                i += step

    def wait_for(self, count: int, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.05)


def _prepare(ctx: DemoContext) -> tuple[str, list[dict[str, Any]], list[float]]:
    """Fresh data for retraining (the first weeks of the changed month, as finished trips land in the
    warehouse) and the traffic the server sees (the month's last days, never trained on)."""
    live = ctx.live.sort_values("event_timestamp").reset_index(drop=True)
    cut = int(len(live) * 0.6)
    fresh, served = live.iloc[:cut], live.iloc[cut:].head(2000)
    data = ctx.home / "flow-data-fresh"
    data.mkdir(parents=True, exist_ok=True)
    fresh_train = fresh.sample(frac=0.8, random_state=0)
    fresh_train.to_parquet(data / "train.parquet")
    fresh.drop(fresh_train.index).to_parquet(data / "valid.parquet")
    return str(data), features(served).to_dict(orient="records"), served[TARGET].astype(float).tolist()


def run(ctx: DemoContext) -> None:
    from mloop.automation import apply_rules, tick
    from mloop.demo.pipelines import FLOW_FILE
    from mloop.monitoring import create_monitor, run_monitor
    from mloop.registry import registry_for
    from mloop.serving import read_predictions

    registry = registry_for(ctx.settings)
    champion = registry.get_alias(MODEL_NAME, "champion").version
    data_dir, rows, truth = _prepare(ctx)
    session = ctx.state.get("session", "demo")
    rules = _rules(str(FLOW_FILE), data_dir, session)
    apply_rules(rules, settings=ctx.settings)
    ctx.console.print("[bold]mloop automation apply rules.yaml[/]:")
    ctx.console.print(rules.strip("\n"), markup=False, highlight=False)
    process, url = _start(ctx, f"models:/{MODEL_NAME}@champion")
    try:
        _wait_ready(process, url)
        with _Traffic(url, rows, truth) as traffic:
            logged_before = len(read_predictions(ctx.settings, MODEL_NAME))
            traffic.wait_for(250)
            _until_logged(ctx, logged_before + 200)
            _detect(ctx, create_monitor, run_monitor)
            ctx.console.print(f"[bold]mloop automation tick[/] while 2 clients keep sending the month's trips to "
                              f"{url}:")
            report = tick(settings=ctx.settings)
            new = registry.get_alias(MODEL_NAME, "champion").version
            deadline = time.monotonic() + 15
            while new != champion and time.monotonic() < deadline and \
                    not any(v == str(new) for _, v in traffic.seen[-5:]):
                time.sleep(0.05)
            count = len(traffic.seen)
            traffic.wait_for(count + 20)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    from mloop.automation.loop import report_lines

    for line in report_lines(report) or ["automation: no trigger saw a new condition (no drift window yet?)"]:
        ctx.console.print(line, markup=False, highlight=False)
    _print_timeline(ctx)
    failed = sum(s != 200 for s, _ in traffic.seen)
    by_version = {v: sum(1 for _, x in traffic.seen if x == v) for v in sorted({v for _, v in traffic.seen})}
    ctx.console.print(f"while the loop ran: {len(traffic.seen)} requests, {failed} failed; answered by "
                      + ", ".join(f"v{v}: {n}" for v, n in by_version.items()), highlight=False)
    ctx.state["automation"] = {"champion_before": champion, "champion_after": new, "requests": len(traffic.seen),
                               "failed": failed, "fired": len(report.fired)}
    ctx.console.print(f"Look next: [bold]mloop automation history[/], [bold]mloop automation timeline "
                      f"{MODEL_NAME}[/], [bold]mloop automation dry-run[/].")


def _until_logged(ctx: DemoContext, rows: int, seconds: float = 30) -> None:
    from mloop.serving import read_predictions

    deadline = time.monotonic() + seconds
    while len(read_predictions(ctx.settings, MODEL_NAME)) < rows and time.monotonic() < deadline:
        time.sleep(0.25)


def _detect(ctx: DemoContext, create_monitor: Any, run_monitor: Any) -> None:
    """The monitor folds the prediction log into 5-minute windows, drift measured against the champion's
    training profile. The demo cannot wait for the window to end: it runs the monitor as of the window's close."""
    create_monitor(MONITOR, MODEL_NAME, window="5m", lateness="1m", settings=ctx.settings)
    close = datetime.now(UTC) + timedelta(minutes=6)
    report = run_monitor(MONITOR, now=close, alerts=False, settings=ctx.settings)
    ctx.console.print(f"monitor {MONITOR}: {report}", highlight=False)


def _print_timeline(ctx: DemoContext) -> None:
    from mloop.automation import firings

    table = Table(title=f"automation timeline of {MODEL_NAME} (times from the drift event)")
    for column in ("time", "what", "rule", "result"):
        table.add_column(column, overflow="fold")
    for firing in reversed(firings(model=MODEL_NAME, rule=RULE, limit=1, settings=ctx.settings)):
        origin = firing["created"] / 1000
        table.add_row(_at(firing["created"], origin), f"event {firing['trigger']}",
                      f"{firing['rule']} v{firing['rule_version']}", firing["reason"])
        for action in firing["actions"]:
            table.add_row(_at(action["finished"], origin), f"{action['kind']} {action['status']}", "",
                          _summary(action["kind"], action["result"]))
        table.add_row("", f"firing {firing['state']}", "", "")
    ctx.console.print(table)


def _at(ms: int | None, origin: float) -> str:
    return "" if ms is None else f"+{ms / 1000 - origin:.1f} s"


def _summary(kind: str, result: dict[str, Any]) -> str:
    """One line for an action's recorded result."""
    if "reason" in result and kind != "notify":
        return str(result["reason"])
    if kind == "run_flow":
        return f"flow run {result['flow_run'][:8]} on the {result.get('executor', 'local')} executor"
    if kind == "evaluate":
        return (f"v{result['challenger_version']} vs champion v{result['champion_version']}: "
                f"{result['traffic']['reason']}")
    if kind == "shadow":
        latency, diff = result["latency_ms"], result.get("mean_abs_diff")
        differs = "" if diff is None else f", {diff:.2f} apart on average"
        return (f"v{result['challenger_version']} answered {result['requests']} copied requests "
                f"({result['unanswered']} unanswered); its answers within 1% of the champion's on "
                f"{result['agreement']:.0%} of them{differs}; median latency {latency['challenger_p50']} ms for "
                f"its model call, {latency['champion_p50']} ms for the champion's whole request")
    if kind in ("promote", "rollback", "canary"):
        return f"{result['alias']}: v{result['from']} -> v{result['to']}"
    if kind == "notify":
        return f"outbox event {result['event_id'][:8]}: {result['message']}"
    return str(result)[:200]
