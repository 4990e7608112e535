"""The Ray executor: the same artifacts, caching, @resources and imports as the local one, and no hangs."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

import mloop.flows as flows
from mloop.flows.executors.ray import _flow_file_on_worker
from tests.flows.test_parallelism import SIZED, assert_wide_ran_alone
from tests.flows.test_resume_and_cache import CACHED
from tests.flows.test_run import GRAPH

ray = pytest.importorskip("ray")

# A run that hangs (a task Ray can never schedule) fails here instead of blocking the suite.
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_executor_gives_the_same_artifacts(write_flow, counts, ray_cluster) -> None:
    source = GRAPH.replace("import FlowSpec, Parameter, step", "import FlowSpec, Parameter, resources, step")
    source = source.replace("    @step\n    def square", "    @resources(cpu=1, memory=200)\n    @step\n    def square")
    file = str(write_flow(source))
    local = flows.run(file, {"scale": "3"})
    remote = flows.run(file, {"scale": "3"}, executor="ray")
    assert remote.executor == "ray" and remote.successful
    for step in ("start", "meet", "gather", "end"):
        assert remote[step].task.artifacts == local[step].task.artifacts, step
    assert [t.artifacts for t in remote["square"]] == [t.artifacts for t in local["square"]]
    assert "starting with 4" in remote["start"].task.stdout
    assert counts()["square"] == 8  # Ray workers on this machine run the same file: both runs counted
    resumed = flows.resume(file, remote.id, from_step="gather", executor="ray")  # resume works the same on Ray
    assert {t.path for s in resumed.steps.values() for t in s if t.reused_from} == {
        "start", "left", "right", "right2", "meet", "fan", "square/0", "square/1", "square/2", "square/3"}
    assert resumed.data.total == remote.data.total


def test_cache_on_ray_hits_when_unchanged_and_misses_on_input_or_code_change(write_flow, counts,
                                                                            ray_cluster) -> None:
    file = str(write_flow(CACHED.replace("FACTOR", "1")))
    assert flows.run(file, executor="ray").data.total == 3
    again = flows.run(file, executor="ray")
    assert counts() == {"heavy": 1, "end": 2}
    assert again["heavy"].task.reused_from is not None and again.data.total == 3
    assert flows.run(file, {"n": "4"}, executor="ray").data.total == 6  # input artifact changed
    assert counts()["heavy"] == 2
    write_flow(CACHED.replace("FACTOR", "10"))  # the step's code changed: workers must not run the old one
    from mloop.flows import task

    task._modules.clear()
    assert flows.run(file, executor="ray").data.total == 30
    assert counts()["heavy"] == 3


@pytest.mark.parametrize("cpus", [2, 4], ids=["cpu=2", "cpu=4 on a 2-CPU cluster"])
def test_resources_cpu_on_ray_is_reserved_and_capped_at_the_cluster(write_flow, cpus, ray_cluster) -> None:
    run = flows.run(str(write_flow(SIZED.replace("CPUS", str(cpus)))), executor="ray")  # cpu=4 used to hang
    assert run["wide"].task.data.cpus == 2  # what Ray reserved for the task
    assert_wide_ran_alone(run.data.spans)


NEEDS = """
from mloop.flows import FlowSpec, catch, resources, retry, step


class Needy(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @catch(var="problem")
    @retry(times=3, backoff=5)
    @resources(NEEDS)
    @step
    def train(self):
        count("train")
        self.next(self.end)

    @step
    def end(self):
        pass
"""


@pytest.mark.parametrize(("needs", "message"), [
    ("gpu=1", r"no Ray node can run it: @resources\(gpu=1\) but the largest node of the cluster has 0 GPUs"),
    ("memory=100_000_000", r"no Ray node can run it: @resources\(memory=100000000\) MB but the largest node of "
                           r"the cluster has \d+ MB for tasks"),
])
def test_a_step_needing_more_than_any_node_has_fails_before_running(write_flow, counts, needs, message,
                                                                     ray_cluster) -> None:
    said: list[str] = []
    with pytest.raises(flows.FlowFailedError, match=r"Step 'train' failed: " + message):
        flows.run(str(write_flow(NEEDS.replace("NEEDS", needs))), executor="ray", echo=said.append)
    assert "train" not in counts()
    assert not [line for line in said if "retrying" in line or "caught" in line]  # neither retried nor caught
    assert flows.get("Needy").latest_run["train"].task.status == "failed"


HELPED = """
from flow_helpers import GREETING
from mloop.flows import FlowSpec, step


class Helped(FlowSpec):
    @step
    def start(self):
        import flow_helpers

        self.greeting = GREETING
        self.again = flow_helpers.GREETING
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_module_next_to_the_flow_imports_on_ray(write_flow, tmp_path: Path, ray_cluster) -> None:
    helpers = tmp_path / "flow_helpers.py"
    helpers.write_text("GREETING = 'hello'\n")
    file = str(write_flow(HELPED))
    try:
        assert flows.run(file).data.greeting == "hello"
        remote = flows.run(file, executor="ray")
        assert remote.successful and (remote.data.greeting, remote.data.again) == ("hello", "hello")
        helpers.write_text("GREETING = 'hi'\n")  # the next run's workers import it afresh
        assert flows.run(file, executor="ray").data.again == "hi"
    finally:
        sys.modules.pop("flow_helpers", None)  # imported here too when the flow file loaded


def test_a_worker_runs_the_original_file_when_it_has_it_unchanged_else_a_copy(tmp_path: Path,
                                                                              monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    original = tmp_path / "flow.py"
    original.write_text("X = 1\n")
    assert _flow_file_on_worker("X = 1\n", str(original)) == str(original)
    copy = _flow_file_on_worker("X = 2\n", str(original))  # edited since the run started
    assert Path(copy).read_text() == "X = 2\n" and Path(copy).name == "flow.py"
    assert hashlib.sha256(b"X = 2\n").hexdigest()[:16] in copy
    assert str(tmp_path) in sys.path  # modules next to the original still import
    elsewhere = str(tmp_path / "on-another-machine" / "flow.py")  # a remote node without the folder
    assert Path(_flow_file_on_worker("X = 3\n", elsewhere)).read_text() == "X = 3\n"
    assert os.path.dirname(elsewhere) not in sys.path
