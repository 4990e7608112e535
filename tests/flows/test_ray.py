"""The same flow on the Ray executor gives the same artifacts as on the local one."""

from __future__ import annotations

import pytest

import mloop.flows as flows
from tests.flows.test_run import GRAPH

ray = pytest.importorskip("ray")


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
