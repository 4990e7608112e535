"""Resume reads the run it resumes straight from SQLite (no SQLAlchemy on its critical path): the same rows as
the repository, and the repository (with its errors) for everything out of the ordinary."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import mloop.flows as flows
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.flows._origin import read_origin
from mloop.flows.runtime import open_flow_repo

FLOW = """
import numpy as np
import pandas as pd
from mloop.flows import FlowSpec, step

MARKERS = Path(__file__).parent


class Scores(FlowSpec):
    @step
    def start(self):
        self.zones = ["north", "süd", None]
        self.next(self.score, foreach="zones")

    @step
    def score(self):
        self.frame = pd.DataFrame({"zone": [self.input, None], "eta": [1.5, np.nan]})
        self.next(self.join)

    @step
    def join(self, inputs):
        self.rows = sum(len(i.frame) for i in inputs)
        if (MARKERS / "fail-join").exists():
            raise RuntimeError("join failed")
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def _through_repository(run_id: str) -> tuple:
    repo = open_flow_repo(Settings.load())
    run = repo.get_run(run_id)
    tasks = [t for t in repo.tasks(run_id) if t.status == "finished"]
    return run, tasks, repo.artifacts([t.task_id for t in tasks])


def test_the_direct_read_gives_what_the_repository_gives(write_flow, tmp_path: Path) -> None:
    file = str(write_flow(FLOW))
    (tmp_path / "fail-join").touch()
    with pytest.raises(flows.FlowFailedError):
        flows.run(file, tags=["nightly", "eta"])
    failed = flows.get("Scores").latest_run
    url = Settings.load().db_url
    direct = read_origin(url, "Scores", failed.id)
    assert direct is not None and direct == _through_repository(failed.id)
    run, tasks, artifacts = direct
    assert run.tags == ["eta", "nightly"] and run.status == "failed"
    assert sorted(t.path for t in tasks) == ["score/0", "score/1", "score/2", "start"]  # not the failed join
    assert all("frame" in artifacts[t.task_id] for t in tasks if t.step == "score")
    assert read_origin(url, "Scores", None) == direct  # the flow's latest run
    (tmp_path / "fail-join").unlink()
    resumed = flows.resume(file)
    assert resumed.successful and resumed.origin_run_id == failed.id and resumed.data.rows == 6
    assert {t.path for s in resumed.steps.values() for t in s if t.reused_from} == {
        "start", "score/0", "score/1", "score/2"}


def test_the_unusual_is_left_to_the_repository(write_flow, tmp_path: Path) -> None:
    first = flows.run(str(write_flow(FLOW)))
    url = Settings.load().db_url
    assert read_origin(url, "Scores", first.id[:8]) is None  # a prefix: the repository resolves (or refuses) it
    assert read_origin(url, "Scores", "0" * 32) is None
    assert read_origin(url, "Other", None) is None
    assert read_origin("postgresql+psycopg://127.0.0.1/test", "Scores", None) is None
    missing = tmp_path / "nowhere" / "mloop.db"
    assert read_origin(f"sqlite:///{missing}", "Scores", None) is None and not missing.exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    assert read_origin(f"sqlite:///{garbage}", "Scores", None) is None
    assert garbage.read_bytes() == b"not a database at all" * 100  # read-only: nothing written
    # and through resume, the repository path still resolves a prefix and words the errors
    resumed = flows.resume(str(tmp_path / "flow.py"), first.id[:8])
    assert resumed.origin_run_id == first.id
    with pytest.raises(NotFoundError, match="No flow run with id '0000000000"):
        flows.resume(str(tmp_path / "flow.py"), "0" * 32)
    with pytest.raises(InvalidInputError, match="--from"):
        flows.resume(str(tmp_path / "flow.py"), first.id, from_step="nope")


def test_a_database_locked_by_a_writer_is_still_read(write_flow) -> None:
    """WAL: a writer holding its transaction open does not block the resume's read."""
    first = flows.run(str(write_flow(FLOW)))
    path = Settings.load().db_url.removeprefix("sqlite:///")
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE flow_runs SET executor = executor WHERE run_id = ?", (first.id,))
        found = read_origin(Settings.load().db_url, "Scores", first.id)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert found is not None and found[0].run_id == first.id and len(found[1]) == 6


def test_a_resume_on_sqlite_decides_what_to_reuse_without_the_repository(write_flow) -> None:
    """The point of the fast path: the repository (SQLAlchemy, still importing in the recorder's thread) is
    not waited for before the first re-run step can start."""
    from mloop.flows._reuse import Reuse
    from mloop.flows.graph import build_graph
    from mloop.flows.task import load_flow

    file = str(write_flow(FLOW))
    first = flows.run(file)
    flow = load_flow(file, None)

    def no_repository():
        raise AssertionError("the repository was asked")

    reuse = Reuse(no_repository, build_graph(flow), flow)
    run = reuse.load_origin(None, "join", Settings.load().db_url)
    assert run.run_id == first.id and sorted(reuse.origin) == ["end", "join", "score/0", "score/1", "score/2",
                                                               "start"]
    assert reuse.rerun == {"join", "end"}
