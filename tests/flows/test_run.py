"""Branches, joins, foreach, conditionals, parameters, artifacts, logs and the client API, on the local executor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mloop.flows as flows
from mloop.errors import InvalidInputError, NotFoundError
from mloop.flows.artifacts import ArtifactStore
from mloop.store.blob import open_blob_store

GRAPH = """
from mloop.flows import FlowSpec, Parameter, step


class Shapes(FlowSpec):
    scale = Parameter(float, default=1.0, min=0)
    kind = Parameter(str, default="big", choices=["big", "small"])

    @step
    def start(self):
        count("start")
        self.items = [1, 2, 3, 4]
        self.shared = "same on every branch"
        print("starting with", len(self.items))
        self.next(self.left, self.right)

    @step
    def left(self):
        count("left")
        self.side = "L"
        self.next(self.meet)

    @step
    def right(self):
        count("right")
        self.side = "R"
        self.next(self.right2)

    @step
    def right2(self):
        self.extra = 2
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.sides = [i.side for i in inputs]
        self.from_right = inputs.right2.extra
        self.next(self.fan)

    @step
    def fan(self):
        self.next(self.square, foreach="items")

    @step
    def square(self):
        count("square")
        self.value = self.input ** 2 * self.scale
        self.position = self.index
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.values = [i.value for i in inputs]
        self.positions = [i.position for i in inputs]
        self.next({"big": self.big, "small": self.small}, condition="kind")

    @step
    def big(self):
        count("big")
        self.label = "big"
        self.next(self.end)

    @step
    def small(self):
        count("small")
        self.label = "small"
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.values)
"""


def test_branches_joins_foreach_and_conditionals(write_flow, counts) -> None:
    run = flows.run(str(write_flow(GRAPH)), {"scale": "2", "kind": "small"}, tags=["t1"])
    assert run.successful and run.tags == ["t1"]
    data = run.data
    assert data.sides == ["L", "R"] and data.from_right == 2
    assert data.values == [2.0, 8.0, 18.0, 32.0] and data.positions == [0, 1, 2, 3]
    assert data.label == "small" and data.total == 60.0
    assert data.shared == "same on every branch"  # equal on every input: passes the joins untouched
    assert data.scale == 2.0 and data.kind == "small"
    assert counts() == {"start": 1, "left": 1, "right": 1, "square": 4, "small": 1}
    assert "big" not in run and len(run["square"]) == 4
    assert [t.data.value for t in run["square"].tasks] == [2.0, 8.0, 18.0, 32.0]
    assert [t.index for t in run["square"]] == [0, 1, 2, 3]
    assert "starting with 4" in run["start"].task.stdout


def test_default_parameters_and_the_other_branch(write_flow) -> None:
    run = flows.run(str(write_flow(GRAPH)))
    assert run.data.label == "big" and run.params == {"scale": 1.0, "kind": "big"}


@pytest.mark.parametrize(("params", "field"), [({"scale": "-1"}, "--scale"), ({"kind": "huge"}, "--kind"),
                                               ({"scale": "abc"}, "--scale"), ({"nope": "1"}, "--nope")])
def test_parameters_are_validated_before_running(write_flow, params, field) -> None:
    with pytest.raises(InvalidInputError) as info:
        flows.run(str(write_flow(GRAPH)), params)
    assert info.value.field == field


ARTIFACTS = """
import numpy as np
import pandas as pd
from mloop.flows import FlowSpec, step


class Data(FlowSpec):
    @step
    def start(self):
        self.frame = pd.DataFrame({"a": np.arange(1000), "b": np.arange(1000) * 0.5})
        self.array = np.arange(12, dtype="float32").reshape(3, 4)
        self.same_array = np.arange(12, dtype="float32").reshape(3, 4)
        self.obj = {"nested": [1, 2, {"x": None}]}
        self.next(self.end)

    @step
    def end(self):
        self.rows = len(self.frame)
"""


def test_artifacts_are_content_addressed_in_native_formats(write_flow, home) -> None:
    run = flows.run(str(write_flow(ARTIFACTS)))
    refs = run["start"].task.artifacts
    assert refs["frame"].encoding == "parquet-pandas"
    assert refs["array"].encoding == "npy" and refs["obj"].encoding == "pickle"
    assert refs["array"].sha256 == refs["same_array"].sha256  # stored once
    assert run["end"].task.artifacts["frame"] == refs["frame"]  # passed by reference, not rewritten
    data = run["start"].task.data
    pd.testing.assert_frame_equal(data.frame, pd.DataFrame({"a": np.arange(1000), "b": np.arange(1000) * 0.5}))
    np.testing.assert_array_equal(data.array, np.arange(12, dtype="float32").reshape(3, 4))
    assert run.data.rows == 1000
    store = ArtifactStore(open_blob_store(str(home / "artifacts")))
    assert store.load(refs["obj"]) == {"nested": [1, 2, {"x": None}]}


def test_client_finds_runs_by_flow_id_prefix_and_tag(write_flow) -> None:
    file = str(write_flow(ARTIFACTS))
    first = flows.run(file, tags=["nightly"])
    second = flows.run(file)
    flow = flows.get("Data")
    assert flow.latest_run.id == second.id
    assert flow[first.id[:8]].id == first.id
    assert [r.id for r in flow.runs(tag="nightly")] == [first.id]
    second.add_tags("best", "reviewed")
    assert [r.id for r in flows.list_runs(tag="best")] == [second.id]
    assert flows.get_run(second.id).tags == ["best", "reviewed"]
    second.remove_tags("best")
    assert flows.list_runs(tag="best") == []
    with pytest.raises(NotFoundError):
        flows.get("NoSuchFlow")
    with pytest.raises(NotFoundError):  # LIKE wildcards in an id prefix match nothing
        flows.get_run(first.id[:2] + "%%%%")
    # each task is a tracking run nested under the flow run
    import mloop

    task = mloop.get_run(first["end"].task.id)
    assert task.parent_run_id == first.id and task.status == "finished"


FAILING = """
from mloop.flows import FlowSpec, step


class Boom(FlowSpec):
    @step
    def start(self):
        self.next(self.explode)

    @step
    def explode(self):
        print("about to fail")
        raise ValueError("bad data in column x")
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_failing_step_names_step_exception_log_and_resume_command(write_flow) -> None:
    file = write_flow(FAILING)
    with pytest.raises(flows.FlowFailedError) as info:
        flows.run(str(file))
    message = str(info.value)
    assert "Step 'explode' failed: ValueError: bad data in column x" in message
    assert "stderr.log" in message and "mloop flow resume" in message and str(file.name) in message
    run = flows.get("Boom").latest_run
    assert run.status == "failed" and run["explode"].task.status == "failed"
    assert "about to fail" in run["explode"].task.stdout
    assert "ValueError: bad data in column x" in run["explode"].task.stderr
    assert "end" not in run


REGISTER = """
from mloop.flows import FlowSpec, current, step


class Register(FlowSpec):
    @step
    def start(self):
        from sklearn.linear_model import LinearRegression

        self.model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
        current.log_metrics({"r2": 1.0})
        self.version = current.log_model(self.model, "flow-model").version
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_model_logged_in_a_step_links_the_version_to_the_flow_run(write_flow) -> None:
    import mloop
    from mloop.config import Settings
    from mloop.registry import registry_for

    run = flows.run(str(write_flow(REGISTER)))
    version = registry_for(Settings.load()).get_version("flow-model", run.data.version)
    task = mloop.get_run(version.run_id)
    assert version.run_id == run["start"].task.id and task.parent_run_id == run.id
    assert task.metrics["r2"] == 1.0
    assert run.data.model.predict([[3.0]])[0] == pytest.approx(6.0)


REGISTER_SDK = """
import mloop
from mloop.flows import FlowSpec, step


class RegisterSdk(FlowSpec):
    @step
    def start(self):
        from sklearn.linear_model import LinearRegression

        model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
        with mloop.start_run(name="fit") as run:
            run.log_metric("r2", 1.0)
            self.version = run.log_model(model, "sdk-model").version
            self.fit_run = run.run_id
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_run_started_with_the_sdk_inside_a_step_hangs_under_the_flow_run(write_flow, tmp_path) -> None:
    import mloop
    from mloop.config import Settings
    from mloop.registry import registry_for

    home = str(tmp_path / "flow-home")  # not the process default: the step must still write there
    settings = Settings.load(home=home)
    run = flows.run(str(write_flow(REGISTER_SDK)), settings=settings)
    registry = registry_for(settings)
    version = registry.get_version("sdk-model", run.data.version)
    fit = registry.runs.get_run(version.run_id)
    assert fit.run_id == run.data.fit_run and fit.parent_run_id == run["start"].task.id
    assert registry.runs.get_run(fit.parent_run_id).parent_run_id == run.id
    lineage = registry.lineage("sdk-model", run.data.version)
    assert lineage["flow"] == {"name": "RegisterSdk", "run_id": run.id, "params": {}, "step": "start",
                               "task_id": run["start"].task.id, "datasets": []}
    assert [a["run_id"] for a in lineage["run"]["ancestors"]] == [run["start"].task.id, run.id]
    with pytest.raises(mloop.errors.NotFoundError):
        mloop.get_run(fit.run_id)  # nothing leaked into the default home


NESTED = """
from mloop.flows import FlowSpec, step


class Nested(FlowSpec):
    @step
    def start(self):
        self.rows = [1, 2]
        self.next(self.row, foreach="rows")

    @step
    def row(self):
        self.r = self.input
        self.cols = [10, 20, 30]
        self.next(self.cell, foreach="cols")

    @step
    def cell(self):
        self.product = self.r * self.input
        self.kind = "even" if self.index % 2 == 0 else "odd"
        self.next({"even": self.even, "odd": self.odd}, condition="kind")

    @step
    def even(self):
        self.tagged = ("E", self.product)
        self.next(self.row_join)

    @step
    def odd(self):
        self.tagged = ("O", self.product)
        self.next(self.row_join)

    @step
    def row_join(self, inputs):
        self.row_total = [i.tagged for i in inputs]
        self.next(self.all_join)

    @step
    def all_join(self, inputs):
        self.table = [i.row_total for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_nested_foreach_with_a_conditional_inside(write_flow) -> None:
    run = flows.run(str(write_flow(NESTED)))
    assert run.data.table == [[("E", 10), ("O", 20), ("E", 30)], [("E", 20), ("O", 40), ("E", 60)]]
    assert sorted(t.path for t in run["cell"]) == ["cell/0.0", "cell/0.1", "cell/0.2", "cell/1.0", "cell/1.1",
                                                   "cell/1.2"]
    assert len(run["even"]) == 4 and len(run["odd"]) == 2 and len(run["row_join"]) == 2
