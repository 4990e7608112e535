"""The graph is checked before anything runs; each error names the step and its file:line."""

from __future__ import annotations

import pytest

import mloop.flows as flows
from mloop.flows.graph import FlowDefinitionError

HEADER = "from mloop.flows import FlowSpec, Parameter, catch, step\n\n\nclass Bad(FlowSpec):\n"


def _line(source: str, needle: str) -> int:
    from tests.flows.conftest import COUNTER

    text = COUNTER + source
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


CASES = {
    "unknown step": ("""
    @step
    def start(self):
        self.next(self.trian)

    @step
    def end(self):
        pass
""", "self.next(self.trian)", "unknown step 'trian'"),
    "no next": ("""
    @step
    def start(self):
        self.x = 1

    @step
    def end(self):
        pass
""", "def start", "has no self.next"),
    "unreachable": ("""
    @step
    def start(self):
        self.next(self.end)

    @step
    def orphan(self):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def orphan", "unreachable"),
    "join without branch": ("""
    @step
    def start(self):
        self.next(self.merge)

    @step
    def merge(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def merge", "join (it takes inputs) but no branch"),
    "fan-in without join": ("""
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.c)

    @step
    def b(self):
        self.next(self.c)

    @step
    def c(self):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def c(self", "receives several branches"),
    "branch bypasses its join": ("""
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.j)

    @step
    def j(self, inputs):
        self.next(self.end)

    @step
    def b(self):
        self.next(self.end)  # around j, which would never run

    @step
    def end(self):
        pass
""", "around j", "step 'b' is inside the split at 'start' but goes to 'end' instead of a join; every branch must "
     "reach the join 'j'"),
    "conditional arm bypasses the join": ("""
    @step
    def start(self):
        self.kind = "skip"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next({"join": self.j, "skip": self.end}, condition="kind")

    @step
    def b(self):
        self.next(self.j)

    @step
    def j(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
""", '"skip": self.end', "step 'a' is inside the split at 'start' but goes to 'end' instead of a join"),
    "foreach without join": ("""
    @step
    def start(self):
        self.xs = [1, 2, 3]
        self.next(self.a, foreach="xs")

    @step
    def a(self):
        self.next(self.end)  # end would run once per item

    @step
    def end(self):
        pass
""", "once per item", "step 'a' is inside the foreach at 'start' but goes to 'end' instead of a join; close the "
     "foreach with a join step that takes inputs"),
    "two joins for one split": ("""
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.j)

    @step
    def b(self):
        self.next(self.j2)

    @step
    def j(self, inputs):
        self.next(self.end)

    @step
    def j2(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "self.next(self.j2)", "step 'b' is inside the split at 'start' and goes to join 'j2', while its other "
     "branches meet in 'j'"),
    "join of two splits": ("""
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.a1, self.a2)

    @step
    def a1(self):
        self.next(self.j)  # closes the split at a, while b's branch closes start

    @step
    def a2(self):
        self.next(self.j)

    @step
    def b(self):
        self.next(self.j)

    @step
    def j(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "closes the split at a", "step 'a1' is inside the split at 'a' and goes to join 'j', which also "
     "receives the branches of the split at 'start'; a join closes one split or foreach"),
    "foreach straight into join": ("""
    @step
    def start(self):
        self.xs = [1, 2]
        self.next(self.j, foreach="xs")

    @step
    def j(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def start", "fans out straight into join 'j'; put the step that runs for each item between them"),
    "catch on a foreach": ("""
    @catch(var="problem")
    @step
    def start(self):
        self.xs = [1, 2]
        self.next(self.a, foreach="xs")

    @step
    def a(self):
        self.next(self.j)

    @step
    def j(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def start", 'has @catch but fans out with foreach="xs", and a caught failure leaves no list to fan out '
     "over; move the code that may fail into a step before 'start'"),
    "catch on a conditional": ("""
    @catch(var="problem")
    @step
    def start(self):
        self.kind = "a"
        self.next({"a": self.a, "b": self.end}, condition="kind")

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def start", 'has @catch but chooses its next step by condition="kind", and a caught failure leaves no '
     "value to choose by"),
    "loop out of a foreach back to start": ("""
    @step
    def start(self):
        self.xs = [1, 2]
        self.next(self.fit, foreach="xs")

    @step
    def fit(self):
        self.verdict = "again"
        self.next({"again": self.start, "done": self.join}, condition="verdict")

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "self.next({\"again\": self.start", "step 'fit' is inside the foreach at 'start' but goes to 'start' instead of "
     "a join"),
    "parameter named index": ("""
    index = Parameter(str, default="products-v2")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
""", 'index = Parameter(str, default="products-v2")', "parameter 'index' of Bad: mloop sets self.input and "
     "self.index in foreach tasks"),
    "parameter named like a CLI option": ("""
    max_workers = Parameter(int, default=8)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "max_workers = Parameter(int, default=8)", "it is an option of 'mloop flow run' (--max-workers)"),
    "arms without condition": ("""
    @step
    def start(self):
        self.kind = "a"
        self.next({"a": self.end})

    @step
    def end(self):
        pass
""", 'self.next({"a": self.end})', "passes a dict of arms to self.next() without condition="),
    "condition without arms": ("""
    @step
    def start(self):
        self.kind = "a"
        self.next(self.end, condition="kind")

    @step
    def end(self):
        pass
""", 'self.next(self.end, condition="kind")', "passes condition= but not one dict of arms"),
    "catch named like a step": ("""
    @catch(var="end")
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
""", "def start", 'has @catch(var="end"), the name of a step'),
    "no end": ("""
    @step
    def start(self):
        self.next(self.start2)

    @step
    def start2(self):
        pass
""", None, "no 'end' step"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_errors_name_step_and_line(write_flow, case) -> None:
    body, needle, expected = CASES[case]
    source = HEADER + body
    file = write_flow(source)
    with pytest.raises(FlowDefinitionError) as info:
        flows.run(str(file))
    message = str(info.value)
    assert expected in message
    if needle is not None:
        assert f"flow.py:{_line(source, needle)}:" in message, message


CONDITIONAL_IN_SPLIT = """
from mloop.flows import FlowSpec, Parameter, step


class Choose(FlowSpec):
    kind = Parameter(str, default="x")

    @step
    def start(self):
        self.next(self.left, self.right)

    @step
    def left(self):
        self.next({"x": self.x, "y": self.y}, condition="kind")

    @step
    def x(self):
        count("x")
        self.picked = "x"
        self.next(MEET_X)

    @step
    def y(self):
        count("y")
        self.picked = "y"
        self.next(MEET_Y)

    @step
    def after(self):
        count("after")
        self.next(self.join)

    @step
    def right(self):
        self.picked = "right"
        self.next(self.join)

    @step
    def join(self, inputs):
        count("join")
        self.picked = [i.picked for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        count("end")
"""


@pytest.mark.parametrize(("meet_x", "kind", "ran"), [
    ("self.after", "y", {"y": 1, "after": 1, "join": 1, "end": 1}),  # both arms meet in a step before the join
    ("self.join", "x", {"x": 1, "join": 1, "end": 1}),  # one arm goes straight to the join...
    ("self.join", "y", {"y": 1, "after": 1, "join": 1, "end": 1}),  # ...the other through a step
])
def test_a_conditional_inside_a_split_is_one_branch(write_flow, counts, meet_x, kind, ran) -> None:
    """Only one arm of a condition runs, so its arms may meet again without a join; the split's join runs once."""
    source = CONDITIONAL_IN_SPLIT.replace("MEET_X", meet_x).replace("MEET_Y", "self.after")
    run = flows.run(str(write_flow(source)), {"kind": kind})
    assert run.successful and counts() == ran
    assert run.data.picked == [kind, "right"]


def test_check_command_prints_the_graph(write_flow, tmp_path) -> None:
    import subprocess
    import sys

    file = write_flow(HEADER + CASES["unknown step"][0])
    out = subprocess.run([sys.executable, "-m", "mloop", "flow", "check", str(file)], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown step 'trian'" in out.stderr


LOOP_IN_FOREACH = """
from mloop.flows import FlowSpec, step


class Refine(FlowSpec):
    @step
    def start(self):
        self.passes = [1, 3, 2]
        self.next(self.fit, foreach="passes")

    @step
    def fit(self):
        count(f"fit-{self.index}")
        self.done = getattr(self, "done", 0) + 1
        self.verdict = "again" if self.done < self.input else "enough"
        self.next({"again": self.fit, "enough": self.join}, condition="verdict")

    @step
    def join(self, inputs):
        self.done = [i.done for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_loop_inside_a_foreach_keeps_its_item(write_flow, counts) -> None:
    """Each pass back to the foreach's step sees the same ``self.input`` and ``self.index``."""
    run = flows.run(str(write_flow(LOOP_IN_FOREACH)))
    assert run.data.done == [1, 3, 2]
    assert counts() == {"fit-0": 1, "fit-1": 3, "fit-2": 2}
    assert [t.path for t in run["fit"]] == ["fit/0", "fit/1", "fit/1#2", "fit/1#3", "fit/2", "fit/2#2"]


LOOP_AROUND_A_SPLIT = """
from mloop.flows import FlowSpec, step


class Rounds(FlowSpec):
    @step
    def start(self):
        self.round = 0
        self.next(self.prep)

    @step
    def prep(self):
        self.round += 1
        self.next(self.a, self.b)

    @step
    def a(self):
        self.x = 10 * self.round
        self.next(self.join)

    @step
    def b(self):
        self.y = self.round
        self.next(self.join)

    @step
    def join(self, inputs):
        self.round = inputs.a.round
        self.total = inputs.a.x + inputs.b.y  # the inputs keep their step names on every pass
        self.verdict = "again" if self.round < 3 else "done"
        self.next({"again": self.prep, "done": self.end}, condition="verdict")

    @step
    def end(self):
        pass
"""


def test_a_loop_around_a_split_joins_by_step_name_on_every_pass(write_flow) -> None:
    run = flows.run(str(write_flow(LOOP_AROUND_A_SPLIT)))
    assert run.data.total == 33
    assert [t.path for t in run["join"]] == ["join", "join#2", "join#3"]
    assert [t.data.total for t in run["join"]] == [11, 22, 33]
