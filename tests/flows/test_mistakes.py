"""What a user gets wrong in a flow gets an error that names it, in the step where it happens."""

from __future__ import annotations

import pytest

import mloop.flows as flows

FANOUT = """
from mloop.flows import FlowSpec, Parameter, step


class Fan(FlowSpec):
    what = Parameter(str, default="list")

    @step
    def start(self):
        self.items = {"list": [1, 2], "dict": {"a": 1}, "set": {1, 2}, "empty": [], "text": "ab"}[self.what]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.doubled = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.doubled = [i.doubled for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass
"""


@pytest.mark.parametrize(("what", "says"), [
    ("dict", "foreach items: got 'dict', expected a list, tuple or array (for a dict, e.g. list(d.items()))"),
    ("set", "foreach items: got 'set', expected a list, tuple or array"),
    ("text", "foreach items: got 'str'"),
    ("empty", "foreach items: got 'an empty list', expected at least one item to fan out over"),
])
def test_a_foreach_over_the_wrong_thing_fails_the_step_that_fans_out(write_flow, what, says) -> None:
    file = str(write_flow(FANOUT))
    with pytest.raises(flows.FlowFailedError, match="Step 'start' failed") as info:
        flows.run(file, {"what": what})
    assert says in str(info.value) and "resume: " in str(info.value)
    run = flows.get("Fan").latest_run
    assert run.status == "failed" and run["start"].task.status == "failed" and "each" not in run
    assert flows.run(file).data.doubled == [2, 4]


SHADOW = """
from mloop.flows import FlowSpec, Parameter, step


class Shadow(FlowSpec):
    rate = Parameter(float, default=0.1)

    @step
    def start(self):
        self.NAME = 1
        self.next(self.features)

    @step
    def features(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


@pytest.mark.parametrize(("assignment", "says"), [
    ("self.features = ['age']", "artifact 'features' has the name of a step of Shadow"),
    ("self.rate = 0.5", "artifact 'rate' has the name of a parameter of Shadow"),
    ("self.merge_artifacts = 1", "artifact 'merge_artifacts' has the name of a method of Shadow"),
])
def test_an_artifact_named_like_a_step_or_parameter_is_refused(write_flow, assignment, says) -> None:
    """Reading it in a later step would give the method or the parameter, never the artifact."""
    with pytest.raises(flows.FlowFailedError, match=says):
        flows.run(str(write_flow(SHADOW.replace("self.NAME = 1", assignment))))


PRIVATE = """
from mloop.flows import FlowSpec, catch, step


class Private(FlowSpec):
    @step
    def start(self):
        self._scaler = "fitted"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @catch
    @step
    def b(self):
        raise ValueError("b broke")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = inputs.a._scaler
        self.error = inputs.b.exception
        self.next(self.choose)

    @step
    def choose(self):
        self.kind = [1]
        self.next({"x": self.end}, condition="kind")

    @step
    def end(self):
        pass
"""


def test_underscore_artifacts_a_bare_catch_and_an_unhashable_condition(write_flow) -> None:
    file = str(write_flow(PRIVATE))
    with pytest.raises(flows.FlowFailedError, match=r"condition kind: got \[1\], expected one of \['x'\]"):
        flows.run(file, tags="nightly")
    run = flows.get("Private").latest_run
    assert run.tags == ["nightly"]  # one tag, not seven letters
    data = run["join"].task.data
    assert data.seen == "fitted" and data._scaler == "fitted"
    assert data.error == "ValueError: b broke"  # bare @catch: the artifact "exception"


def test_an_artifact_that_cannot_be_stored_is_named(write_flow) -> None:
    source = SHADOW.replace("self.NAME = 1", "import threading\n        self.guard = threading.Lock()")
    with pytest.raises(flows.FlowFailedError, match=r"artifact 'guard' \(lock\) cannot be stored"):
        flows.run(str(write_flow(source)))


def test_run_listing_filters_and_prefixes_are_checked(write_flow) -> None:
    from mloop.config import Settings
    from mloop.errors import InvalidInputError
    from mloop.flows.runtime import open_flow_repo

    repo = open_flow_repo(Settings.load())
    experiment = repo.experiment_id("Twins")
    for run_id in ("abcdef01" + "0" * 24, "abcdef02" + "0" * 24):
        repo.create_run(run_id=run_id, experiment_id=experiment, flow_name="Twins", file="twins.py", params={},
                        tags=[], run_tags={}, origin=None, executor="local", user="me")
    with pytest.raises(InvalidInputError, match=r"a prefix of one run; it starts abcdef010000, abcdef020000"):
        flows.get_run("abcdef")
    assert flows.get_run("abcdef02").id.startswith("abcdef02")
    with pytest.raises(InvalidInputError, match="status"):
        flows.list_runs(status="bogus")
    with pytest.raises(InvalidInputError, match="limit"):
        flows.get("Twins").runs(limit=0)
    assert len(flows.get("Twins").runs(limit=1)) == 1 and len(flows.get("Twins").runs()) == 2


SLEEPER = """
import time
from mloop.flows import FlowSpec, step


class Sleeper(FlowSpec):
    @step
    def start(self):
        time.sleep(6)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_run_whose_orchestrator_died_is_marked_killed_and_a_live_one_is_not(write_flow) -> None:
    import threading
    import time

    import sqlalchemy as sa

    from mloop.config import Settings
    from mloop.flows.runtime import open_flow_repo
    from mloop.tracking import _tables as t

    settings = Settings.load(heartbeat_seconds=0.2, heartbeat_timeout_seconds=3)
    done: list[flows.FlowRun] = []
    thread = threading.Thread(target=lambda: done.append(flows.run(str(write_flow(SLEEPER)), settings=settings)))
    thread.start()
    deadline = time.monotonic() + 60
    while not flows.list_runs("Sleeper", settings=settings) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(4)  # past the timeout: heartbeats (every 0.2 s, 15 per timeout) keep it alive
    assert flows.list_runs("Sleeper", settings=settings)[0].status == "running"
    thread.join(60)
    assert done and done[0].status == "finished"

    repo = open_flow_repo(settings)
    orphan = "feed" * 8
    repo.create_run(run_id=orphan, experiment_id=repo.experiment_id("Sleeper"), flow_name="Sleeper",
                    file="sleeper.py", params={}, tags=[], run_tags={"mloop.flow": "Sleeper"}, origin=None,
                    executor="local", user="me")
    with repo.db.write() as conn:  # its orchestrator died ten seconds ago
        conn.execute(sa.update(t.runs).where(t.runs.c.run_id == orphan).values(heartbeat=t.runs.c.heartbeat - 10_000))
    assert flows.get_run(orphan, settings=settings).status == "killed"
    assert [r.status for r in flows.list_runs("Sleeper", settings=settings)] == ["killed", "finished"]


def test_a_parameter_given_its_name_instead_of_its_type_says_how_to_write_it() -> None:
    from mloop.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as caught:
        flows.Parameter("seed", default=1)  # type: ignore[arg-type]
    assert caught.value.field == "Parameter.type" and caught.value.value == "seed"
    assert "seed = Parameter(int, default=1)" in str(caught.value)
    assert flows.Parameter(int, default=1).parse("7") == 7
