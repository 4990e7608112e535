"""How many tasks run at once: at most ``max_workers`` CPUs' worth, a ``@resources(cpu=2)`` task counting twice,
a ``@resources(memory=...)`` task counting its share of the machine's RAM.

Tasks record when they started and ended (time.time()) as an artifact; the tests check overlaps and order,
never durations, because the machine is shared and noisy.
"""

from __future__ import annotations

import mloop.flows as flows

SPAN = """
import sys
import time


def span():
    \"\"\"(start, end) of half a second of work.\"\"\"
    started = time.time()
    time.sleep(0.5)
    return started, time.time()


def assigned_cpus():
    \"\"\"The CPUs Ray gave this task, or None outside Ray.\"\"\"
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_assigned_resources().get("CPU")
"""

FANOUT = SPAN + """
from mloop.flows import FlowSpec, step


class Fanout(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.span = span()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.spans = [i.span for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass
"""

# A wide step between two narrow ones; CPUS is replaced by what the test asks for.
SIZED = SPAN + """
from mloop.flows import FlowSpec, resources, step


class Sized(FlowSpec):
    @step
    def start(self):
        self.next(self.narrow, self.wide, self.narrow2)

    @step
    def narrow(self):
        self.span = span()
        self.next(self.join)

    @resources(cpu=CPUS)
    @step
    def wide(self):
        self.span = span()
        self.cpus = assigned_cpus()
        self.next(self.join)

    @step
    def narrow2(self):
        self.span = span()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.spans = {i.step: i.span for i in inputs}
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of spans that overlap at one instant (one ending as another starts: no overlap)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def assert_wide_ran_alone(spans: dict[str, tuple[float, float]]) -> None:
    wide = spans["wide"]
    for other in ("narrow", "narrow2"):
        assert most_at_once([wide, spans[other]]) == 1, f"wide {wide} overlaps {other} {spans[other]}"


def test_most_at_once_counts_overlaps() -> None:
    assert most_at_once([(0, 1), (1, 2), (2, 3)]) == 1
    assert most_at_once([(0, 3), (1, 2), (1.5, 4), (3.5, 5)]) == 3


def test_a_foreach_runs_at_most_max_workers_tasks_at_once(write_flow) -> None:
    run = flows.run(str(write_flow(FANOUT)), max_workers=2)
    spans = run.data.spans
    assert len(spans) == 4
    assert most_at_once(spans) == 2  # two at a time: limited, and still in parallel


def test_a_two_cpu_step_runs_alone_when_the_capacity_is_two(write_flow) -> None:
    run = flows.run(str(write_flow(SIZED.replace("CPUS", "2"))), max_workers=2)
    assert_wide_ran_alone(run.data.spans)
    assert run["wide"].task.data.cpus is None  # not on Ray


def test_a_step_asking_for_more_cpus_than_the_capacity_runs_alone(write_flow) -> None:
    run = flows.run(str(write_flow(SIZED.replace("CPUS", "8"))), max_workers=2)
    assert_wide_ran_alone(run.data.spans)


def test_tasks_that_each_want_most_of_the_memory_never_run_side_by_side(write_flow) -> None:
    import psutil

    most = int(psutil.virtual_memory().total / (1 << 20) * 0.6)  # MB: 60% of this machine's RAM, one CPU each
    source = FANOUT.replace("from mloop.flows import FlowSpec, step", "from mloop.flows import FlowSpec, resources, "
                            "step").replace("    @step\n    def work", f"    @resources(memory={most})\n    @step\n"
                                            "    def work")
    run = flows.run(str(write_flow(source)), max_workers=4)  # CPUs alone would let all four run at once
    assert most_at_once(run.data.spans) == 1


THREADS = """
import os

import numpy  # loaded in the fork server, before any task: its BLAS pool is sized at run time
from mloop.flows import FlowSpec, resources, step


def blas_threads():
    from threadpoolctl import threadpool_info

    return sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})


class Threads(FlowSpec):
    @step
    def start(self):
        self.default = os.environ.get("OMP_NUM_THREADS"), blas_threads()
        self.next(self.wide)

    @resources(cpu=2)
    @step
    def wide(self):
        self.wide_env = os.environ.get("OMP_NUM_THREADS"), blas_threads()
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_native_thread_pools_get_the_cpus_the_task_reserved(write_flow, monkeypatch) -> None:
    run = flows.run(str(write_flow(THREADS)), max_workers=2)
    assert run.data.default == ("1", [1])
    assert run.data.wide_env == ("2", [2])
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own setting wins
    run = flows.run(str(write_flow(THREADS)), max_workers=2)
    assert run.data.default[0] == "3" and run.data.wide_env[0] == "3"
