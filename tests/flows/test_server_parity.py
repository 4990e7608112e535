"""Flows in both modes (``mode_settings``): the stores directly, or everything through a live ``mloop server``.

The same scenario runs in each: a foreach, a DataFrame handed from step to step, a failing step, a resume that
reuses what finished, logs, ``mloop flow show`` and ``mloop gc``. Through the server, the client's home never
gets a database or an artifact, and the tasks' processes reach the server with the client's settings.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import mloop.flows as flows
from mloop.errors import NotFoundError

PIPELINE = """
import pandas as pd
from mloop.flows import FlowSpec, Parameter, current, step

MARKERS = Path(__file__).parent


class Scores(FlowSpec):
    scale = Parameter(float, default=1.0)

    @step
    def start(self):
        count("start")
        self.frame = pd.DataFrame({"zone": [1, 2, 3], "trips": [10, 20, 30]})
        self.zones = list(self.frame.zone)
        self.next(self.score, foreach="zones")

    @step
    def score(self):
        count("score")
        print(f"scoring zone {self.input}")
        row = self.frame[self.frame.zone == self.input]
        self.total = float(row.trips.sum()) * self.scale
        current.log_metrics({"total": self.total})  # on the task's tracking run, wherever the flow records
        self.next(self.join)

    @step
    def join(self, inputs):
        count("join")
        self.totals = sorted(i.total for i in inputs)
        self.frame = inputs[0].frame.assign(total=self.totals)
        self.next(self.report)

    @step
    def report(self):
        count("report")
        if (MARKERS / "fail-report").exists():
            raise RuntimeError("report service down")
        self.summary = f"sum={sum(self.totals):g}"
        self.next(self.end)

    @step
    def end(self):
        count("end")
"""


def mloop(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, with this test's environment (MLOOP_HOME, and MLOOP_TRACKING_URI in server mode)."""
    return subprocess.run([sys.executable, "-m", "mloop", *args], capture_output=True, text=True, timeout=180)


def _client_files(settings) -> list[str]:  # type: ignore[no-untyped-def]
    home = Path(settings.home)
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")) if home.exists() else []


def _show(run_id: str, origin: str) -> str:
    shown = mloop("flow", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    # what differs between any two runs: the ids, and the seconds each step took
    text = shown.stdout.replace(run_id, "<run>").replace(origin, "<origin>")
    return re.sub(r"\d+\.\d\d", "<s>", text)


def test_a_flow_runs_fails_resumes_and_reads_back_the_same_in_both_modes(mode_settings, write_flow, counts,
                                                                         tmp_path: Path) -> None:
    file = str(write_flow(PIPELINE))
    (tmp_path / "fail-report").touch()
    with pytest.raises(flows.FlowFailedError, match="Step 'report' failed: RuntimeError: report service down"):
        flows.run(file, {"scale": "2"}, settings=mode_settings)
    failed = flows.get("Scores", settings=mode_settings).latest_run
    assert failed.status == "failed" and failed.params == {"scale": 2.0}
    assert failed["report"].task.status == "failed" and "report service down" in failed["report"].task.error
    assert "report service down" in failed["report"].task.stderr  # the failed task's log was stored too
    assert [t.stdout.strip() for t in failed["score"]] == [f"scoring zone {z}" for z in (1, 2, 3)]
    from mloop.tracking import TrackingClient

    tracking = TrackingClient(mode_settings)
    assert [tracking.get_run(t.id).metrics for t in failed["score"]] == [{"total": v} for v in (20.0, 40.0, 60.0)]

    (tmp_path / "fail-report").unlink()
    resumed = flows.resume(file, failed.id, settings=mode_settings)
    assert counts() == {"start": 1, "score": 3, "join": 1, "report": 2, "end": 1}  # only report ran again
    assert resumed.successful and resumed.origin_run_id == failed.id
    assert {t.path for s in resumed.steps.values() for t in s if t.reused_from} == {
        "start", "score/0", "score/1", "score/2", "join"}
    assert resumed.data.summary == "sum=120"
    assert resumed.data.frame.to_dict("list") == {"zone": [1, 2, 3], "trips": [10, 20, 30],
                                                  "total": [20.0, 40.0, 60.0]}

    logs = mloop("flow", "logs", resumed.id, "score/1", "--stdout")
    assert logs.returncode == 0 and logs.stdout.strip() == "scoring zone 2", logs.stderr
    listed = mloop("flow", "list", "Scores")
    assert listed.returncode == 0 and resumed.id[:12] in listed.stdout and failed.id[:12] in listed.stdout
    shown = _show(resumed.id, failed.id)
    assert shown == _EXPECTED_SHOW.setdefault("resumed", shown)
    if mode_settings.remote:
        assert _client_files(mode_settings) == []  # no database, no artifacts, no logs on the client


# `mloop flow show` as the first mode printed it: the second must print the same (pytest runs direct first)
_EXPECTED_SHOW: dict[str, str] = {}


def test_the_cli_runs_and_resumes_a_flow_through_the_server(mode_settings, write_flow, counts,
                                                            tmp_path: Path) -> None:
    file = str(write_flow(PIPELINE))
    (tmp_path / "fail-report").touch()
    first = mloop("flow", "run", file, "--scale", "3")
    assert first.returncode == 1 and "report service down" in first.stderr
    run_id = re.search(r"flow failed\S* run ([0-9a-f]{32})", first.stderr).group(1)  # type: ignore[union-attr]
    (tmp_path / "fail-report").unlink()
    second = mloop("flow", "resume", file)
    assert second.returncode == 0, second.stderr
    assert "1 ran" in second.stdout.replace("\n", " ") or "2 ran" in second.stdout.replace("\n", " ")
    assert counts()["report"] == 2 and counts()["score"] == 3
    latest = flows.get("Scores", settings=mode_settings).latest_run
    assert latest.origin_run_id == run_id and latest.data.summary == "sum=180"
    if mode_settings.remote:
        assert _client_files(mode_settings) == []


def test_gc_purges_a_deleted_flow_run_through_the_server(mode_settings, write_flow, tmp_path: Path) -> None:
    from mloop.tracking import TrackingClient

    file = str(write_flow(PIPELINE))
    run = flows.run(file, settings=mode_settings)
    TrackingClient(mode_settings).delete_run(run.id)
    # a prediction log day long past its retention, where the stores are (the server's home in server mode)
    stores = tmp_path / ("server-home" if mode_settings.remote else "client-home")
    old_day = stores / "artifacts" / "predictions" / "eta" / "2020-01-01"
    old_day.mkdir(parents=True)
    (old_day / "part-0.parquet").write_bytes(b"rows")
    purged = mloop("gc", "--older-than", "0s")
    assert purged.returncode == 0, purged.stderr
    assert "prediction log: deleted 1 days (1 files) older than 90 days" in purged.stdout
    assert not old_day.exists()
    assert int(re.search(r"purged (\d+) runs", purged.stdout).group(1)) == 8  # type: ignore[union-attr]  # the run and its 7 tasks
    with pytest.raises(NotFoundError):
        flows.get_run(run.id, settings=mode_settings)
    if mode_settings.remote:
        assert _client_files(mode_settings) == []
