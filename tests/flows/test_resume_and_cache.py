"""Resume re-runs only what failed (counted in files); @cache skips unchanged steps and notices changes."""

from __future__ import annotations

from pathlib import Path

import pytest

import mloop.flows as flows

PIPELINE = """
from mloop.flows import FlowSpec, Parameter, step

MARKERS = Path(__file__).parent


class Train(FlowSpec):
    lr = Parameter(float, default=0.1)

    @step
    def start(self):
        count("start")
        self.candidates = ["a", "b", "c"]
        self.next(self.train, foreach="candidates")

    @step
    def train(self):
        count("train")
        count(f"train-{self.input}")
        if (MARKERS / f"fail-train-{self.input}").exists():
            raise RuntimeError(f"training {self.input} crashed")
        self.score = {"a": 0.3, "b": 0.9, "c": 0.5}[self.input] * self.lr
        self.name = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        count("join")
        self.best = max(inputs, key=lambda i: i.score).name
        self.next(self.evaluate)

    @step
    def evaluate(self):
        count("evaluate")
        if (MARKERS / "fail-evaluate").exists():
            raise RuntimeError("evaluation service unavailable")
        self.report = f"best={self.best}"
        self.next(self.end)

    @step
    def end(self):
        count("end")
"""


def test_resume_reruns_only_the_failed_step_and_what_follows(write_flow, counts, tmp_path: Path) -> None:
    file = str(write_flow(PIPELINE))
    (tmp_path / "fail-evaluate").touch()
    with pytest.raises(flows.FlowFailedError, match="Step 'evaluate' failed: RuntimeError: evaluation service"):
        flows.run(file, {"lr": "2"})
    failed = flows.get("Train").latest_run
    assert counts() == {"start": 1, "train": 3, "train-a": 1, "train-b": 1, "train-c": 1, "join": 1, "evaluate": 1}
    (tmp_path / "fail-evaluate").unlink()
    resumed = flows.resume(file, failed.id)
    assert counts() == {"start": 1, "train": 3, "train-a": 1, "train-b": 1, "train-c": 1, "join": 1,
                        "evaluate": 2, "end": 1}
    assert resumed.successful and resumed.origin_run_id == failed.id
    assert resumed.params == {"lr": 2.0}  # the resumed run's parameters
    assert resumed.data.report == "best=b"
    assert {t.path for s in resumed.steps.values() for t in s if t.reused_from} == {
        "start", "train/0", "train/1", "train/2", "join"}
    assert resumed["train"].tasks[1].data.score == pytest.approx(1.8)


def test_resume_reruns_only_the_failed_foreach_task(write_flow, counts, tmp_path: Path) -> None:
    file = str(write_flow(PIPELINE))
    (tmp_path / "fail-train-b").touch()
    with pytest.raises(flows.FlowFailedError, match="train/1"):
        flows.run(file)
    assert counts()["train-b"] == 1 and "join" not in counts()  # siblings not yet started stay unstarted
    (tmp_path / "fail-train-b").unlink()
    flows.resume(file)  # the latest run by default
    assert counts() == {"start": 1, "train": 4, "train-a": 1, "train-b": 2, "train-c": 1, "join": 1,
                        "evaluate": 1, "end": 1}


def test_resume_from_a_chosen_step(write_flow, counts) -> None:
    file = str(write_flow(PIPELINE))
    first = flows.run(file)
    second = flows.resume(file, first.id, from_step="join")
    assert counts() == {"start": 1, "train": 3, "train-a": 1, "train-b": 1, "train-c": 1, "join": 2,
                        "evaluate": 2, "end": 2}
    assert second.data.report == first.data.report


def test_resume_of_another_flows_run_is_refused(write_flow) -> None:
    first = flows.run(str(write_flow(PIPELINE)))
    other = write_flow(PIPELINE.replace("class Train", "class Other"), "other.py")
    with pytest.raises(flows.FlowFailedError.__mro__[1]):  # an MloopError naming the mismatch
        flows.resume(str(other), first.id)


def test_resuming_a_finished_run_reuses_every_task_and_runs_none(write_flow, counts,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.flows.executors.local import LocalExecutor

    started: list[str] = []  # fork servers booted: reusing a step must not cost a worker
    real_start = LocalExecutor.start
    monkeypatch.setattr(LocalExecutor, "start", lambda self, *a: started.append("start") or real_start(self, *a))
    file = str(write_flow(PIPELINE))
    first = flows.run(file)
    assert started == ["start"]
    before = counts()
    resumed = flows.resume(file)  # the latest run, found on the run's own database connection
    assert counts() == before  # no step ran again
    assert started == ["start"]  # and no worker was started for it
    assert resumed.successful and resumed.origin_run_id == first.id and resumed.data.report == first.data.report
    assert all(t.reused_from for s in resumed.steps.values() for t in s)


def test_resuming_a_flow_that_never_ran_names_it(write_flow) -> None:
    from mloop.errors import NotFoundError

    with pytest.raises(NotFoundError, match="Flow 'Train' has no runs yet: nothing to resume"):
        flows.resume(str(write_flow(PIPELINE)))


LOOPING = """
from mloop.flows import FlowSpec, step

MARKERS = Path(__file__).parent


class Rounds(FlowSpec):
    @step
    def start(self):
        self.round = 0
        self.scores = []
        self.next(self.propose)

    @step
    def propose(self):
        count("propose")
        self.round += 1
        self.seeds = [10 * self.round + i for i in range(3)]
        self.next(self.fit, foreach="seeds")

    @step
    def fit(self):
        count(f"fit-{self.input}")
        if (MARKERS / f"fail-{self.input}").exists():
            raise RuntimeError(f"seed {self.input} crashed")
        self.score = self.input
        self.next(self.decide)

    @step
    def decide(self, inputs):
        count("decide")
        self.round = inputs[0].round
        self.scores = inputs[0].scores + [max(i.score for i in inputs)]
        self.verdict = "again" if self.round < 3 else "done"
        self.next({"again": self.propose, "done": self.end}, condition="verdict")

    @step
    def end(self):
        count("end")
"""


def test_a_loop_runs_each_pass_and_resume_reruns_only_the_failed_pass(write_flow, counts, tmp_path: Path) -> None:
    file = str(write_flow(LOOPING))
    (tmp_path / "fail-21").touch()  # the second pass's second seed
    with pytest.raises(flows.FlowFailedError, match=r"Step 'fit/1#2' failed: RuntimeError: seed 21 crashed"):
        flows.run(file)
    failed = flows.get("Rounds").latest_run
    assert [t.path for t in failed["propose"]] == ["propose", "propose#2"]
    before = counts()
    assert before["propose"] == 2 and before["decide"] == 1 and before["fit-21"] == 1
    (tmp_path / "fail-21").unlink()
    resumed = flows.resume(file, failed.id)
    after = counts()
    assert after["propose"] == 3 and after["decide"] == 3 and after["end"] == 1
    assert after["fit-21"] == 2  # the failed task, once more
    assert all(after[f"fit-{seed}"] == 1 for seed in (10, 11, 12, 20, 22, 30, 31, 32))  # ran once, in one run
    assert resumed.data.scores == [12, 22, 32] and resumed.data.round == 3
    fits = resumed["fit"].tasks
    assert [(t.index, t.iteration) for t in fits] == [(i, n) for i in range(3) for n in (1, 2, 3)]
    reused = {t.path for t in fits if t.reused_from}
    assert {"fit/0", "fit/1", "fit/2"} <= reused and "fit/1#2" not in reused and not any("#3" in p for p in reused)
    assert [t.path for t in resumed["decide"]] == ["decide", "decide#2", "decide#3"]


CACHED = """
from mloop.flows import FlowSpec, Parameter, cache, step


class Cached(FlowSpec):
    n = Parameter(int, default=3)

    @step
    def start(self):
        self.data = list(range(self.n))
        self.next(self.heavy)

    @cache
    @step
    def heavy(self):
        count("heavy")
        self.total = sum(self.data) * FACTOR
        self.next(self.end)

    @step
    def end(self):
        count("end")
"""


def test_cache_hits_when_unchanged_and_misses_on_code_or_input_change(write_flow, counts) -> None:
    file = str(write_flow(CACHED.replace("FACTOR", "1")))
    assert flows.run(file).data.total == 3
    again = flows.run(file)
    assert counts() == {"heavy": 1, "end": 2}
    assert again["heavy"].task.reused_from is not None and again.data.total == 3
    assert flows.run(file, {"n": "4"}).data.total == 6  # input artifact changed
    assert counts()["heavy"] == 2
    write_flow(CACHED.replace("FACTOR", "10"))  # the step's code changed
    from mloop.flows import task

    task._modules.clear()
    assert flows.run(file).data.total == 30
    assert counts()["heavy"] == 3


HELPED = """
from mloop.flows import FlowSpec, cache, catch, step
import helpers

SCALE = SCALE_VALUE


def features(xs):
    return [x * MULT for x in xs]


class Helped(FlowSpec):
    @step
    def start(self):
        self.data = [1, 2, 3]
        self.next(self.heavy)

    @cache
    @step
    def heavy(self):
        count("heavy")
        self.total = sum(features(self.data)) * SCALE + helpers.bonus() + self.offset()
        self.next(self.end)

    def offset(self):
        return OFFSET

    @step
    def end(self):
        count("end")
        self.done = END_VALUE
"""


def test_cache_misses_when_code_the_step_calls_changes(write_flow, counts, tmp_path: Path) -> None:
    from mloop.flows import task

    def run(mult: int = 1, scale: int = 1, offset: int = 0, bonus: int = 0, end: int = 0) -> int:
        (tmp_path / "helpers.py").write_text(f"def bonus():\n    return {bonus}\n")
        source = (HELPED.replace("MULT", str(mult)).replace("SCALE_VALUE", str(scale))
                  .replace("OFFSET", str(offset)).replace("END_VALUE", str(end)))
        task._modules.clear()
        for module in ("helpers",):
            __import__("sys").modules.pop(module, None)
        return flows.run(str(write_flow(source))).data.total

    assert run() == 6
    assert run(end=1) == 6 and counts()["heavy"] == 1  # another step's code changed: still a hit
    assert run(mult=2) == 12 and counts()["heavy"] == 2  # a function of the flow file
    assert run(mult=2, scale=3) == 36 and counts()["heavy"] == 3  # a module-level constant
    assert run(mult=2, scale=3, offset=1) == 37 and counts()["heavy"] == 4  # a method of the flow
    assert run(mult=2, scale=3, offset=1, bonus=5) == 42 and counts()["heavy"] == 5  # a module beside the flow
    assert run(mult=2, scale=3, offset=1, bonus=5) == 42 and counts()["heavy"] == 5


CAUGHT = """
from mloop.flows import FlowSpec, cache, catch, step

MARKERS = Path(__file__).parent


class Flaky(FlowSpec):
    @step
    def start(self):
        self.next(self.fetch)

    @cache
    @catch(var="problem")
    @step
    def fetch(self):
        count("fetch")
        if (MARKERS / "outage").exists():
            raise ConnectionError("transient outage")
        self.data = 42
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_failure_caught_by_catch_is_never_served_from_the_cache(write_flow, counts, tmp_path: Path) -> None:
    file = str(write_flow(CAUGHT))
    (tmp_path / "outage").touch()
    first = flows.run(file)
    assert "transient outage" in str(first.data.problem)
    (tmp_path / "outage").unlink()
    second = flows.run(file)
    assert second.data.data == 42 and counts()["fetch"] == 2
    third = flows.run(file)  # the success is cached
    assert third.data.data == 42 and counts()["fetch"] == 2


OPTIONAL = """
from mloop.flows import FlowSpec, Parameter, step


class Optional(FlowSpec):
    name = Parameter(str, default=None)
    limit = Parameter(int, default=None)
    pairs = Parameter(dict, default={1: "a"})

    @step
    def start(self):
        self.seen = (self.name, self.limit, self.pairs)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_resume_keeps_the_first_runs_parameter_values(write_flow) -> None:
    file = str(write_flow(OPTIONAL))
    first = flows.run(file)
    assert first["start"].task.data.seen == (None, None, {1: "a"})
    resumed = flows.resume(file, first.id, from_step="start")
    assert resumed["start"].task.data.seen == (None, None, {1: "a"})  # not 'None', nor {'1': 'a'}
    given = flows.run(file, {"name": "x", "limit": "3"})
    assert flows.resume(file, given.id, from_step="start").data.seen == ("x", 3, {1: "a"})


CONTAINERS = """
from mloop.flows import FlowSpec, cache, step
import mypkg.sub

CONFIG = {"k": K_VALUE, "tags": {"x", "y"}, "unstable": object()}
WEIGHTS = (1, W_VALUE)


class Containers(FlowSpec):
    FEATURES = ["a", F_VALUE]

    @step
    def start(self):
        self.next(self.heavy)

    @cache
    @step
    def heavy(self):
        count("heavy")
        self.result = (CONFIG["k"], sum(WEIGHTS), mypkg.sub.g(0), self.FEATURES)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_cache_misses_when_a_container_constant_or_a_submodule_changes(write_flow, counts, tmp_path: Path) -> None:
    from mloop.flows import task

    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")

    def run(k: int = 10, weight: int = 2, feature: str = "b", offset: int = 1) -> tuple:
        # sizes differ between versions of sub.py, so a stale .pyc is never loaded for a new source
        (tmp_path / "mypkg" / "sub.py").write_text(f"def g(x):\n    return x + {offset}\n")
        source = (CONTAINERS.replace("K_VALUE", str(k)).replace("W_VALUE", str(weight))
                  .replace("F_VALUE", repr(feature)))
        task._modules.clear()  # the flow module is executed again: object() gets a new address
        for module in ("mypkg", "mypkg.sub"):
            __import__("sys").modules.pop(module, None)
        return tuple(flows.run(str(write_flow(source))).data.result)

    assert run() == (10, 3, 1, ["a", "b"])
    assert run() == (10, 3, 1, ["a", "b"]) and counts()["heavy"] == 1  # the object() skipped: still a hit
    assert run(k=200) == (200, 3, 1, ["a", "b"]) and counts()["heavy"] == 2  # a dict constant
    assert run(k=200, weight=30)[1] == 31 and counts()["heavy"] == 3  # a tuple constant
    assert run(k=200, weight=30, feature="cc")[3] == ["a", "cc"] and counts()["heavy"] == 4  # a class attribute
    assert run(k=200, weight=30, feature="cc", offset=40)[2] == 40 and counts()["heavy"] == 5  # mypkg/sub.py
    assert run(k=200, weight=30, feature="cc", offset=40)[2] == 40 and counts()["heavy"] == 5


FINGERPRINT = """
from mloop.flows._code import code_fingerprint

TAGS = {TAGS}
NESTED = {{"b": [1, (2.5, None)], "a": {{"s": frozenset({{"p", "q"}})}}, 3: object()}}


def step(self):
    return TAGS, NESTED

print(code_fingerprint(step))
"""


def test_container_constants_give_the_same_key_in_every_process(tmp_path: Path) -> None:
    """Set order follows string hashes, salted per process: the key must not."""
    import os
    import subprocess
    import sys

    def fingerprint(tags: set[str], seed: int) -> str:
        script = tmp_path / "fingerprint.py"
        script.write_text(FINGERPRINT.format(TAGS=repr(tags)))
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                              check=True).stdout

    tags = {f"tag{i}" for i in range(20)}
    assert fingerprint(tags, 1) == fingerprint(tags, 2)
    assert fingerprint(tags, 1) != fingerprint(tags - {"tag7"}, 1)


def test_resume_from_a_step_reruns_it_even_when_cached(write_flow, counts) -> None:
    file = str(write_flow(CACHED.replace("FACTOR", "1")))
    first = flows.run(file)
    resumed = flows.resume(file, first.id, from_step="heavy")
    assert counts() == {"heavy": 2, "end": 2}  # --from promises a re-run, not a cache hit
    assert resumed["heavy"].task.reused_from is None and resumed.data.total == 3
    assert flows.run(file)["heavy"].task.reused_from is not None  # the cache still serves later runs
    assert counts()["heavy"] == 2


def test_resume_after_a_parameter_was_renamed_says_so(write_flow) -> None:
    from mloop.errors import InvalidInputError

    first = flows.run(str(write_flow(OPTIONAL)))
    renamed = write_flow(OPTIONAL.replace("limit = Parameter", "cap = Parameter").replace("self.limit", "self.cap"))
    from mloop.flows import task

    task._modules.clear()
    with pytest.raises(InvalidInputError, match=r"that run had the parameters \['limit'\], which the flow no longer"):
        flows.resume(str(renamed), first.id)


VALUES = """
import dataclasses
import enum
import sys

import numpy as np
from mloop.flows._code import code_fingerprint


@dataclasses.dataclass
class Config:
    tags: set = dataclasses.field(default_factory=lambda: {f"t{i}" for i in range(20)})


class Mode(enum.Enum):
    FAST = 1


CONFIGS = [Config()]
WEIGHTS = {"w": np.arange(10000)}
WEIGHTS["w"][5000] = int(sys.argv[1])  # the middle of the array, which numpy's repr leaves out
MODE = Mode.FAST


def step(self):
    return CONFIGS, WEIGHTS, MODE

print(code_fingerprint(step))
"""


def test_dataclasses_arrays_and_enums_count_by_content_in_every_process(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "values.py"
    script.write_text(VALUES)

    def fingerprint(middle: int, seed: int) -> str:
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        return subprocess.run([sys.executable, str(script), str(middle)], env=env, capture_output=True, text=True,
                              check=True).stdout

    assert fingerprint(5000, 1) == fingerprint(5000, 2)  # a set inside a dataclass: ordered the same
    assert fingerprint(5000, 1) != fingerprint(-1, 1)


def test_resume_after_a_required_parameter_was_added_says_so(write_flow) -> None:
    from mloop.errors import InvalidInputError
    from mloop.flows import task

    first = flows.run(str(write_flow(OPTIONAL)))
    grown = write_flow(OPTIONAL.replace("    @step\n    def start", "    epochs = Parameter(int)\n\n    @step\n"
                                        "    def start", 1))
    task._modules.clear()
    with pytest.raises(InvalidInputError, match=r"has no value for the required parameters \['epochs'\]"):
        flows.resume(str(grown), first.id)
