"""Read any past run of any flow, from a notebook or another process.

``mloop.flows.get("TrainFlow").latest_run["train"].task.data.model``
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from mloop._util.clock import from_ms
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.flows._paths import parse_path
from mloop.flows._rows import RunRow, TaskRow
from mloop.flows.artifacts import ArtifactRef, ArtifactStore
from mloop.flows.repository import FlowRepository, open_flow_repo, store_location


class _Context:
    def __init__(self, settings: Settings | None = None) -> None:
        from mloop.flows.task import artifact_store

        self.settings = settings or Settings.load()
        self.repo: FlowRepository = open_flow_repo(self.settings)
        self.store: ArtifactStore = artifact_store(store_location(self.settings))


class TaskData:
    """A task's artifacts as attributes, loaded on first access: ``task.data.model``."""

    def __init__(self, refs: dict[str, ArtifactRef], store: ArtifactStore) -> None:
        self._refs = refs
        self._store = store
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "_cache" not in self.__dict__:  # protocols, or not yet built (unpickling)
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Any:
        if name not in self._refs:
            raise AttributeError(f"no artifact '{name}'; this task has {sorted(self._refs)}")
        if name not in self._cache:
            self._cache[name] = self._store.load(self._refs[name])
        return self._cache[name]

    def __contains__(self, name: object) -> bool:
        return name in self._refs

    def __dir__(self) -> list[str]:
        return sorted(self._refs)

    def __repr__(self) -> str:
        return f"<TaskData {sorted(self._refs)}>"


class Task:
    """One execution of a step (one of a foreach's tasks): status, timings, logs, artifacts."""

    def __init__(self, row: TaskRow, ctx: _Context) -> None:
        self._row = row
        self._ctx = ctx
        self._refs: dict[str, ArtifactRef] | None = None

    id = property(lambda self: self._row.task_id, doc="The task's id (also its tracking run id).")
    step = property(lambda self: self._row.step)
    path = property(lambda self: self._row.path, doc="``step``, ``step/<foreach index>``, and ``#<n>`` after "
                    "either for the n-th pass of a loop.")
    status = property(lambda self: self._row.status)
    attempts = property(lambda self: self._row.attempt + 1)
    error = property(lambda self: self._row.error)
    reused_from = property(lambda self: self._row.reused_from,
                           doc="The task whose results were reused (resume or @cache), else None.")
    started = property(lambda self: from_ms(self._row.started))
    ended = property(lambda self: from_ms(self._row.ended))

    @property
    def successful(self) -> bool:
        return self._row.status == "finished"

    @property
    def index(self) -> int | None:
        """The position in the innermost foreach, or None outside a foreach."""
        return parse_path(self._row.path).index

    @property
    def iteration(self) -> int:
        """1 for the first pass through the step, 2 for the second when a conditional loops back, ..."""
        return parse_path(self._row.path).iteration

    @property
    def seconds(self) -> float | None:
        return None if self._row.ended is None else (self._row.ended - self._row.started) / 1000

    @property
    def artifacts(self) -> dict[str, ArtifactRef]:
        if self._refs is None:
            self._refs = self._ctx.repo.artifacts([self.id])[self.id]
        return self._refs

    @property
    def data(self) -> TaskData:
        return TaskData(self.artifacts, self._ctx.store)

    def _log(self, sha: str | None) -> str:
        if sha is None:
            return ""
        return self._ctx.store.get(sha).decode(errors="replace")

    @property
    def stdout(self) -> str:
        return self._log(self._row.stdout_sha)

    @property
    def stderr(self) -> str:
        return self._log(self._row.stderr_sha)

    def __repr__(self) -> str:
        return f"<Task {self.path} {self.status}>"


class Step:
    """A step of a run and its tasks (several for a foreach)."""

    def __init__(self, name: str, tasks: list[Task]) -> None:
        self.name = name
        self.tasks = sorted(tasks, key=lambda t: (t.index if t.index is not None else -1, t.iteration, t.path))

    @property
    def task(self) -> Task:
        """The step's task (the first one of a foreach, the first pass of a loop)."""
        return self.tasks[0]

    @property
    def status(self) -> str:
        states = {t.status for t in self.tasks}
        for state in ("failed", "running", "killed"):
            if state in states:
                return state
        return "finished"

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __repr__(self) -> str:
        return f"<Step {self.name}: {len(self.tasks)} task(s), {self.status}>"


class FlowRun:
    """One run of a flow: ``run["train"].task.data.model``, ``run.data.x`` (the end step's), tags, status."""

    def __init__(self, row: RunRow, ctx: _Context) -> None:
        self._row = row
        self._ctx = ctx
        self._steps: dict[str, Step] | None = None

    id = property(lambda self: self._row.run_id, doc="The run's id (also its tracking run id).")
    flow_name = property(lambda self: self._row.flow_name)
    status = property(lambda self: self._row.status)
    params = property(lambda self: dict(self._row.params))
    origin_run_id = property(lambda self: self._row.origin_run_id, doc="The run this one resumed, if any.")
    executor = property(lambda self: self._row.executor)
    file = property(lambda self: self._row.file)

    @property
    def tags(self) -> list[str]:
        return list(self._row.tags)

    @property
    def created(self) -> datetime | None:
        return from_ms(self._row.created)

    @property
    def successful(self) -> bool:
        return self._row.status == "finished"

    @property
    def steps(self) -> dict[str, Step]:
        if self._steps is None:
            by_step: dict[str, list[Task]] = {}
            for row in self._ctx.repo.tasks(self.id):
                by_step.setdefault(row.step, []).append(Task(row, self._ctx))
            self._steps = {name: Step(name, tasks) for name, tasks in by_step.items()}
        return self._steps

    def __getitem__(self, step: str) -> Step:
        if step not in self.steps:
            raise NotFoundError(f"Run {self.id[:8]} has no task of step '{step}'; it has {sorted(self.steps)}.",
                                field="step")
        return self.steps[step]

    def __contains__(self, step: object) -> bool:
        return step in self.steps

    @property
    def data(self) -> TaskData:
        """The artifacts at the end step (every artifact that reached the end)."""
        return self["end"].task.data

    def add_tags(self, *tags: str) -> FlowRun:
        from mloop.flows.runtime import _check_tag

        self._ctx.repo.add_tags(self.id, [_check_tag(t) for t in tags])
        self._row = self._ctx.repo.get_run(self.id)
        return self

    def remove_tags(self, *tags: str) -> FlowRun:
        self._ctx.repo.remove_tags(self.id, list(tags))
        self._row = self._ctx.repo.get_run(self.id)
        return self

    def __repr__(self) -> str:
        return f"<FlowRun {self.flow_name} {self.id[:8]} {self.status} tags={self.tags}>"


class Flow:
    """A flow by name: its runs, newest first."""

    def __init__(self, name: str, ctx: _Context) -> None:
        self.name = name
        self._ctx = ctx

    def runs(self, tag: str | None = None, status: str | None = None, limit: int | None = None) -> list[FlowRun]:
        return [FlowRun(r, self._ctx) for r in self._ctx.repo.list_runs(self.name, tag, status, limit)]

    @property
    def latest_run(self) -> FlowRun:
        return self.latest()

    def latest(self, tag: str | None = None, status: str | None = None) -> FlowRun:
        """The newest run, optionally with ``tag`` and/or ``status`` (e.g. ``latest(tag="prod")``)."""
        found = self.runs(tag=tag, status=status, limit=1)
        if not found:
            which = " ".join(filter(None, [f"tagged '{tag}'" if tag else "", f"with status {status}" if status
                                           else ""]))
            raise NotFoundError(f"Flow '{self.name}' has no runs {which or 'yet'}.", field="flow")
        return found[0]

    @property
    def latest_successful_run(self) -> FlowRun:
        return self.latest(status="finished")

    def __getitem__(self, run_id: str) -> FlowRun:
        run = get_run(run_id, _ctx=self._ctx)
        if run.flow_name != self.name:
            raise NotFoundError(f"Run {run_id} belongs to flow '{run.flow_name}', not '{self.name}'.", field="run_id")
        return run

    def __repr__(self) -> str:
        return f"<Flow {self.name}>"


def get(name: str, *, settings: Settings | None = None) -> Flow:
    """A flow by its class name (it must have at least one run)."""
    ctx = _Context(settings)
    if name not in ctx.repo.flow_names():
        raise NotFoundError(f"No runs of a flow named '{name}'. Known flows: {ctx.repo.flow_names()}.", field="flow")
    return Flow(name, ctx)


def get_run(run_id: str, *, settings: Settings | None = None, _ctx: _Context | None = None) -> FlowRun:
    """A flow run by id (or a unique prefix of at least 6 characters)."""
    if not isinstance(run_id, str) or not run_id:
        raise InvalidInputError(field="run_id", value=run_id, expected="a flow run id")
    ctx = _ctx or _Context(settings)
    return FlowRun(ctx.repo.get_run(run_id), ctx)


def list_runs(flow: str | None = None, *, tag: str | None = None, status: str | None = None,
              limit: int | None = 50, settings: Settings | None = None, where: Any = None) -> list[FlowRun]:
    """Runs of every flow (or one), newest first, filtered by tag and status (and ``where``, a further SQL
    condition on the flow_runs table: a server keeps the runs its caller may see)."""
    ctx = _Context(settings)
    return [FlowRun(r, ctx) for r in ctx.repo.list_runs(flow, tag, status, limit, where=where)]
