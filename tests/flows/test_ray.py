"""The Ray executor: the same artifacts and @resources as the local one, and no hangs."""

from __future__ import annotations

import pytest

import mloop.flows as flows
from tests.flows.test_parallelism import SIZED, assert_wide_ran_alone
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
    assert counts()["square"] == 4  # Ray workers run a copy of the file elsewhere: only the local run counted here
    resumed = flows.resume(file, remote.id, from_step="gather", executor="ray")  # resume works the same on Ray
    assert {t.path for s in resumed.steps.values() for t in s if t.reused_from} == {
        "start", "left", "right", "right2", "meet", "fan", "square/0", "square/1", "square/2", "square/3"}
    assert resumed.data.total == remote.data.total


@pytest.mark.parametrize("cpus", [2, 4], ids=["cpu=2", "cpu=4 on a 2-CPU cluster"])
def test_resources_cpu_on_ray_is_reserved_and_capped_at_the_cluster(write_flow, cpus, ray_cluster) -> None:
    run = flows.run(str(write_flow(SIZED.replace("CPUS", str(cpus)))), executor="ray")  # cpu=4 used to hang
    assert run["wide"].task.data.cpus == 2  # what Ray reserved for the task
    assert_wide_ran_alone(run.data.spans)


NEEDS = """
from mloop.flows import FlowSpec, resources, step


class Needy(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

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
    ("gpu=1", r"Ray cannot run step 'train': it asks for @resources\(gpu=1\) but the largest node of the "
              r"cluster has 0 GPUs"),
    ("memory=100_000_000", r"Ray cannot run step 'train': it asks for @resources\(memory=100000000\) MB but the "
                           r"largest node of the cluster has \d+ MB for tasks"),
])
def test_a_step_needing_more_than_any_node_has_fails_before_running(write_flow, counts, needs, message,
                                                                     ray_cluster) -> None:
    with pytest.raises(flows.FlowFailedError, match=r"Step 'train' failed: " + message):
        flows.run(str(write_flow(NEEDS.replace("NEEDS", needs))), executor="ray")
    assert "train" not in counts()
    assert flows.get("Needy").latest_run["train"].task.status == "failed"
