"""The orchestrator: walks the graph, launches tasks on an executor, records them, retries, resumes and caches.

Workers never touch the metadata database; this process records every task (a nested tracking run).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError
from mloop.flows._paths import parse_path
from mloop.flows._recorder import Recorder
from mloop.flows._reuse import PARAMS, Reuse
from mloop.flows.artifacts import ArtifactRef
from mloop.flows.graph import FlowGraph, build_graph
from mloop.flows.task import artifact_store, common_index, load_flow

if TYPE_CHECKING:
    from mloop.flows.repository import FlowRepository

# The tracking run statuses (mloop.tracking.entities.RunStatus), spelled out to keep this module light.
FINISHED, FAILED, RUNNING, KILLED = "finished", "failed", "running", "killed"


class FlowFailedError(MloopError):
    """A step failed; the message names it, the exception, its log and the resume command."""

    error_code = "FLOW_FAILED"

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message, field="step")
        self.run_id = run_id


@dataclass
class Frame:
    """An open split: the task that opened it, how wide it is, and which branch this task is on; for a foreach,
    also the step it fans out to and the artifact it fans out over."""

    split_task: str
    kind: str
    width: int
    index: int
    target: str | None = None
    foreach_var: str | None = None


@dataclass
class Pending:
    step: str
    path: str
    inputs: list[str]
    stack: list[Frame]
    foreach_var: str | None = None
    foreach_index: int | None = None


@dataclass
class Live:
    """A launched task: its row id, attempt and deadline."""

    pending: Pending
    task_id: str
    attempt: int = 0
    deadline: float | None = None
    cost: float = 1.0
    cache_key: str | None = None
    log_dir: str = ""


@dataclass
class _State:
    """The scheduler's working set during one run."""

    ready: deque[Pending]
    live: dict[str, Live] = field(default_factory=dict)
    retry_at: list[tuple[float, Live]] = field(default_factory=list)
    joins: dict[tuple[str, str], dict[int, str]] = field(default_factory=dict)
    used: float = 0.0
    failing: bool = False


@dataclass
class Outcome:
    run_id: str
    status: str
    executed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error: str | None = None


def open_flow_repo(settings: Settings) -> FlowRepository:
    """The flow repository ``settings`` point at (the database, or an mloop server); see repository.py."""
    from mloop.flows.repository import open_flow_repo as open_repo

    return open_repo(settings)


class Runtime:
    """One flow run from start to end (or to the first failure)."""

    def __init__(self, flow_file: str, *, flow_class: str | None = None, settings: Settings | None = None,
                 params: dict[str, Any] | None = None, tags: list[str] | None = None, executor: Any = None,
                 origin_run: str | None = None, resume_from: str | None = None, echo: Any = None,
                 on_created: Any = None, progress: Any = None, resume: bool = False) -> None:
        from mloop.flows.executors.local import LocalExecutor

        self.on_created = on_created
        self.progress = progress
        self.flow_class = flow_class
        self.settings = settings or Settings.load()
        self.flow_file = os.path.abspath(flow_file)
        if not os.path.isfile(self.flow_file):
            raise InvalidInputError(field="flow file", value=flow_file, expected="an existing .py file defining a "
                                    "FlowSpec")
        self.executor = executor or LocalExecutor()
        self._executor_started = False
        resuming = resume or origin_run is not None
        # A resume from SQLite reads its origin first (milliseconds) to learn whether any step will run at all.
        if not resuming or self.settings.remote or not self.settings.db_url.startswith("sqlite"):
            self._start_executor()  # warms up while we prepare the run
        try:
            self._prepare(flow_class, params, tags, origin_run, resume_from, resuming)
            if resuming and self.reuse.may_run_tasks():
                self._start_executor()
        except BaseException:
            self.executor.close()
            raise
        self.echo = echo or (lambda _msg: None)

    def _start_executor(self) -> None:
        """Start the executor (its workers warm up), once: a resume that reuses every step never starts it
        (first launch starts it, if one comes after all)."""
        if not self._executor_started:
            self._executor_started = True
            self.executor.start(self.flow_file, self.flow_class or "")

    def _prepare(self, flow_class: str | None, params: dict[str, Any] | None, tags: list[str] | None,
                 origin_run: str | None, resume_from: str | None, resume: bool) -> None:
        self.flow = load_flow(self.flow_file, flow_class)
        self.graph: FlowGraph = build_graph(self.flow)
        from mloop.flows.repository import store_location

        self.location = store_location(self.settings)  # the artifact root, or the server the bytes go through
        self.store = artifact_store(self.location)
        # where tasks write their output before it is stored; through a server, the client keeps no home files
        self._log_root = (tempfile.mkdtemp(prefix="mloop-flow-logs-") if self.settings.remote
                          else os.path.join(self.settings.home, "flows", "logs"))
        # The database opens in the recorder's thread while the first tasks run; a resume needs it now.
        self.recorder = Recorder(lambda: open_flow_repo(self.settings))
        self.reuse = Reuse(lambda: self.recorder.repo, self.graph, self.flow)
        self._recorded_first = False
        self.origin_run = None
        if resume:
            # read directly, not through the recorder's database: that one is still importing SQLAlchemy
            direct = None if self.settings.remote else self.settings.db_url
            self.origin_run = self.reuse.load_origin(origin_run, resume_from, direct)
            params = _stored_params(self.flow, self.origin_run) | (params or {})
        self.params = self.flow.resolve_params(params or {})  # type: ignore[attr-defined]
        # A resumed run continues the one it resumes: it keeps that run's tags, so filtering by them finds it.
        inherited = self.origin_run.tags if self.origin_run else []
        if isinstance(tags, str):
            tags = [tags]  # one tag, not one per letter
        self.tags = list(dict.fromkeys([*inherited, *(_check_tag(t) for t in (tags or []))]))
        self.index: dict[str, dict[str, ArtifactRef]] = {}
        self.transitions: dict[str, dict[str, Any]] = {}
        self.steps_of: dict[str, str] = {}  # task id -> its step (a path like fit/2#3 is not a step name)
        self.visits: dict[str, int] = {"start": 1}

    # ---------------------------------------------------------------- main loop
    def run(self) -> Outcome:
        executor = self.executor
        self.run_id = uuid.uuid4().hex
        try:
            self.recorder.call(self._create_run)
            self._log_params()  # the first artifacts: through a server, the first request that may be refused
        except BaseException:
            executor.close()
            raise
        outcome = Outcome(self.run_id, RUNNING)
        if self.on_created is not None:
            self.on_created(self.run_id)
        self.echo(f"flow {self.flow.__name__} run {self.run_id}"
                  + (f" (resuming {self.origin_run.run_id})" if self.origin_run else ""))
        try:
            self._loop(executor, outcome)
        except BaseException as exc:
            for task_id in getattr(self, "state", _State(deque())).live:
                executor.kill(task_id, "the flow run was interrupted")
            status = KILLED if isinstance(exc, KeyboardInterrupt) else FAILED
            try:
                self.recorder.call(lambda repo: repo.end_run(self.run_id, status))
                self.recorder.close()
            except MloopError:
                pass
            raise
        finally:
            executor.close()
            if self.settings.remote:  # the logs are in the store now
                shutil.rmtree(self._log_root, ignore_errors=True)
        outcome.status = FAILED if outcome.failed else FINISHED
        self.recorder.call(lambda repo: repo.end_run(self.run_id, outcome.status))
        self.recorder.close()
        return outcome

    def _create_run(self, repo: FlowRepository) -> None:
        """In the recorder's thread: the experiment, the flow run and its tracking run (with where it ran)."""
        from mloop.flows._code import file_digest
        from mloop.tracking.env import run_context_tags

        experiment = repo.experiment_id(self.flow.__name__)
        # the digest of the code that ran: a version trained here is compared with the flow file later
        run_tags = run_context_tags() | {"mloop.flow": self.flow.__name__, "mloop.flow.file": self.flow_file,
                                         "mloop.flow.digest": file_digest(self.flow_file)}
        repo.create_run(run_id=self.run_id, experiment_id=experiment, flow_name=self.flow.__name__,
                        file=self.flow_file, params=self.params, tags=self.tags, run_tags=run_tags,
                        origin=self.origin_run.run_id if self.origin_run else None, executor=self.executor.name,
                        user=self.settings.user)
        self.recorder.experiment_id = experiment

    def _log_params(self) -> None:
        self.index[PARAMS] = {k: self.store.save(v) for k, v in self.params.items()}

    def _loop(self, executor: Any, outcome: Outcome) -> None:
        state = _State(ready=deque([Pending("start", "start", [PARAMS], [])]))
        self.state = state
        last_beat = time.monotonic()
        while (state.ready and not state.failing) or state.live or state.retry_at:
            if time.monotonic() - last_beat > self.settings.heartbeat_seconds:
                # without heartbeats, readers take the run for dead (kill -9) and mark it killed
                live = [self.run_id, *state.live]
                self.recorder.call(lambda repo, ids=live: repo.heartbeat(ids))
                last_beat = time.monotonic()
            self._fill(executor, state, outcome)
            if not state.live:
                if state.retry_at:  # a long backoff: wake up for the heartbeat meanwhile
                    wait = min(w for w, _ in state.retry_at) - time.monotonic()
                    time.sleep(min(max(0.0, wait), self.settings.heartbeat_seconds))
                continue
            if self.progress is not None:
                self.progress(len(outcome.executed) + len(outcome.reused) + len(outcome.cached), len(state.live),
                              len(outcome.failed))
            wakeup = _next_wakeup(state.live, state.retry_at, last_beat + self.settings.heartbeat_seconds)
            for key, result in executor.wait(wakeup):
                item = state.live.pop(key)
                state.used -= item.cost
                if self._handle(item, result, outcome, state.retry_at, state.failing):
                    self._advance(key, item.pending, state.ready, state.joins)
                elif key not in {i.task_id for _, i in state.retry_at}:
                    state.failing = True
            self._enforce_timeouts(executor, state)

    def _fill(self, executor: Any, state: _State, outcome: Outcome) -> None:
        """Launch (or reuse) ready tasks while capacity lasts; relaunch retries whose backoff is over."""
        while state.ready and not state.failing:
            pending = state.ready[0]
            cost = executor.cost(self.graph[pending.step].decorators.get("resources", {}))
            if state.live and state.used + cost > executor.capacity:
                break
            state.ready.popleft()
            reused = self._try_reuse(pending, outcome)
            if reused is not None:
                self._advance(reused, pending, state.ready, state.joins)
                continue
            item = self._launch(executor, pending)
            item.cost = cost
            state.used += cost
            state.live[item.task_id] = item
        now = time.monotonic()
        for when, item in list(state.retry_at):
            if state.failing or when <= now:
                state.retry_at.remove((when, item))
            if when <= now and not state.failing:
                self._relaunch(executor, item)
                state.live[item.task_id] = item
                state.used += item.cost

    def _enforce_timeouts(self, executor: Any, state: _State) -> None:
        now = time.monotonic()
        for item in state.live.values():
            if item.deadline is not None and now > item.deadline:
                seconds = self.graph[item.pending.step].decorators["timeout"]["seconds"]
                executor.kill(item.task_id, f"TimeoutError: step '{item.pending.step}' ran longer than "
                                            f"{seconds:g} s (@timeout) and was killed")
                item.deadline = None

    # ---------------------------------------------------------------- one task
    def _cache_key(self, pending: Pending) -> str | None:
        return self.reuse.cache_key(pending.step, pending.foreach_index, [self.index[i] for i in pending.inputs])

    def _try_reuse(self, pending: Pending, outcome: Outcome) -> str | None:
        """Clone a finished task of the resumed run or of the cache instead of running it; returns the new id."""
        key = self._cache_key(pending)
        found = self.reuse.find(pending.step, pending.path, pending.inputs, key)
        if found is None:
            return None
        kind, source, artifacts = found
        task_id = uuid.uuid4().hex
        self.recorder.start_task(task_id=task_id, run_id=self.run_id, step=pending.step, path=pending.path,
                                 inputs=pending.inputs, cache_key=key, log_dir=source.log_dir,
                                 user=self.settings.user)
        self.recorder.finish_task(task_id, FINISHED, transition=source.transition, artifacts=artifacts,
                                  stdout_sha=source.stdout_sha, stderr_sha=source.stderr_sha,
                                  reused_from=source.task_id)
        self.index[task_id] = artifacts
        self.transitions[task_id] = source.transition or {}
        if kind == "reused":
            self.reuse.reused_ids.add(task_id)
            outcome.reused.append(pending.path)
        else:
            outcome.cached.append(pending.path)
        self.echo(f"  {pending.path}: {kind} from {source.run_id[:8]}/{source.task_id[:8]}")
        return task_id

    def _launch(self, executor: Any, pending: Pending) -> Live:
        key = self._cache_key(pending)
        log_dir = os.path.join(self._log_root, self.run_id, *pending.path.split("/"))
        task_id = uuid.uuid4().hex
        self.recorder.start_task(task_id=task_id, run_id=self.run_id, step=pending.step, path=pending.path,
                                 inputs=pending.inputs, cache_key=key, log_dir=log_dir, user=self.settings.user)
        if not self._recorded_first:
            # A step may log to its task's run at once: the first task waits until the recorder (still opening
            # the database) has stored the run and the task; later tasks start behind a queue milliseconds long.
            self.recorder.flush()
            self._recorded_first = True
        item = Live(pending, task_id, cache_key=key, log_dir=log_dir)
        self._start_executor()
        self._submit(executor, item)
        return item

    def _submit(self, executor: Any, item: Live) -> None:
        pending = item.pending
        node = self.graph[pending.step]
        spec = {"flow_file": self.flow_file, "flow_class": self.flow.__name__, "step": pending.step,
                "artifact_root": self.location, "join": node.is_join,
                "inputs": [{"task_id": i, "step": self.steps_of.get(i, "start"),
                            "artifacts": {k: list(v) for k, v in self.index[i].items()}} for i in pending.inputs],
                "foreach_var": pending.foreach_var, "foreach_index": pending.foreach_index,
                "task_id": item.task_id, "run_id": self.run_id, "attempt": item.attempt,
                "db_url": self.settings.db_url, "home": self.settings.home,
                "tracking_uri": self.settings.tracking_uri, "direct_artifacts": self.settings.direct_artifacts}
        seconds = node.decorators.get("timeout", {}).get("seconds")
        item.deadline = time.monotonic() + seconds if seconds else None
        executor.submit(item.task_id, spec, item.log_dir, node.decorators.get("resources", {}))

    def _relaunch(self, executor: Any, item: Live) -> None:
        self.recorder.set_attempt(item.task_id, item.attempt)
        self._submit(executor, item)

    def _handle(self, item: Live, result: dict[str, Any], outcome: Outcome,
                retry_at: list[tuple[float, Live]], failing: bool) -> bool:
        """Record a task's end; True when the flow can go on from it."""
        node = self.graph[item.pending.step]
        logs = result.get("logs") or self._salvage_logs(item)
        if result.get("ok"):
            artifacts = {k: ArtifactRef(*v) for k, v in result["artifacts"].items()}
            self._finish(item, artifacts, result.get("transition"), logs)
            outcome.executed.append(item.pending.path)
            return True
        retry = node.decorators.get("retry")
        permanent = bool(result.get("permanent"))  # e.g. resources no node has: retrying or catching hides it
        if retry and item.attempt < retry["times"] and not failing and not permanent:
            delay = retry["backoff"] * (2 ** item.attempt)
            item.attempt += 1
            self.echo(f"  {item.pending.path}: attempt {item.attempt} failed ({result['error']}); "
                      f"retrying in {delay:g} s")
            retry_at.append((time.monotonic() + delay, item))
            return False
        if "catch" in node.decorators and not permanent:  # the graph check refuses @catch where it cannot apply
            # Go on with what the step started from: its input's artifacts, or for a join those its inputs agree on.
            base = common_index([self.index[i] for i in item.pending.inputs])
            base[node.decorators["catch"]["var"]] = self.store.save(result["error"])
            self._finish(item, base, {"steps": list(node.out), "foreach": None, "condition": None}, logs,
                         error=result["error"])
            outcome.executed.append(item.pending.path)
            self.echo(f"  {item.pending.path}: failed, caught by @catch ({result['error']})")
            return True
        self.recorder.finish_task(item.task_id, FAILED, error=result.get("traceback") or result["error"],
                              stdout_sha=logs.get("stdout"), stderr_sha=logs.get("stderr"))
        outcome.failed.append(item.pending.path)
        if outcome.error is None:
            outcome.error = self._failure_message(item, result)
        return False

    def _salvage_logs(self, item: Live) -> dict[str, str]:
        """The output of a task that was killed (@timeout, a signal) before it could store its own logs: what it
        printed before it hung is what its user needs to see. A remote worker's folder is not here: nothing."""
        from mloop.flows.task import store_logs

        return store_logs(self.store, item.log_dir) if item.log_dir and os.path.isdir(item.log_dir) else {}

    def _finish(self, item: Live, artifacts: dict[str, ArtifactRef], transition: dict[str, Any] | None,
                logs: dict[str, str], error: str | None = None) -> None:
        self.recorder.finish_task(item.task_id, FINISHED, transition=transition, artifacts=artifacts, error=error,
                              stdout_sha=logs.get("stdout"), stderr_sha=logs.get("stderr"))
        self.index[item.task_id] = artifacts
        self.transitions[item.task_id] = transition or {}

    def _failure_message(self, item: Live, result: dict[str, Any]) -> str:
        """Which step failed and why, where its log is, and the commands that show it and resume the run, with
        the options (--flow, --executor, --home) they need to run as printed from here."""
        import shlex

        log = os.path.join(item.log_dir, "stderr.log") if item.log_dir else ""
        # --home unless the default settings (environment, config file) already lead to this run's home
        home = [] if Settings.load().home == self.settings.home else ["--home", self.settings.home]
        relative = os.path.relpath(self.flow_file)
        resume = ["mloop", "flow", "resume", relative if not relative.startswith("..") else self.flow_file,
                  self.run_id, *(["--flow", self.flow_class] if self.flow_class else []),
                  *(["--executor", self.executor.name] if self.executor.name != "local" else []), *home]
        lines = [f"Step '{item.pending.path}' failed: {result['error']}"]
        # a remote worker's log, or any log of a run through a server, is only in the artifact store
        if log and os.path.isfile(log) and not self.settings.remote:
            lines.append(f"  log: {log}")
        lines.append(f"  logs: {shlex.join(['mloop', 'flow', 'logs', self.run_id, item.pending.path, *home])}")
        lines.append(f"  resume: {shlex.join(resume)}")
        return "\n".join(lines)

    # ---------------------------------------------------------------- what follows a task
    def _advance(self, task_id: str, pending: Pending, ready: deque[Pending],
                 joins: dict[tuple[str, str], dict[int, str]]) -> None:
        self.steps_of[task_id] = pending.step
        transition = self.transitions.get(task_id) or {}
        steps = transition.get("steps") or []
        suffix = parse_path(pending.path).position
        if transition.get("foreach"):
            count = int(transition.get("count", 0))  # at least 1: FlowSpec.next refuses an empty foreach
            target = steps[0]
            for i in range(count):
                stack = [*pending.stack, Frame(task_id, "foreach", count, i, target, transition["foreach"])]
                ready.append(Pending(target, self._visit(f"{target}/{_foreach_path(stack)}"), [task_id], stack,
                                     transition["foreach"], i))
            return
        for i, target in enumerate(steps):
            stack = pending.stack
            if len(steps) > 1:
                stack = [*stack, Frame(task_id, "split", len(steps), i)]
            if self.graph[target].is_join:
                frame = stack[-1]
                waiting = joins.setdefault((target, frame.split_task), {})
                waiting[frame.index] = task_id
                if len(waiting) == frame.width:
                    del joins[(target, frame.split_task)]
                    outer = stack[:-1]
                    path = f"{target}/{_foreach_path(outer)}" if _foreach_path(outer) else target
                    ready.append(Pending(target, self._visit(path), [waiting[j] for j in range(frame.width)],
                                         outer))
                continue
            path = f"{target}/{suffix}" if suffix else target
            inner = stack[-1] if stack and stack[-1].kind == "foreach" else None
            if inner is not None and inner.target == target:  # a loop back to the foreach's step: same item
                ready.append(Pending(target, self._visit(path), [task_id], stack, inner.foreach_var, inner.index))
                continue
            ready.append(Pending(target, self._visit(path), [task_id], stack))

    def _visit(self, path: str) -> str:
        """``path`` the first time a run reaches it, ``path#2`` the second (a conditional that loops back), ...

        Loop iterations run one after another, so the numbering is the same in a run and in its resume, and
        resume matches each iteration with its own earlier task."""
        count = self.visits[path] = self.visits.get(path, 0) + 1
        return path if count == 1 else f"{path}#{count}"


def _foreach_path(stack: list[Frame]) -> str:
    return ".".join(str(f.index) for f in stack if f.kind == "foreach")


def _next_wakeup(live: dict[str, Live], retry_at: list[tuple[float, Live]], beat_due: float) -> float:
    now = time.monotonic()
    times = [i.deadline for i in live.values() if i.deadline is not None] + [w for w, _ in retry_at] + [beat_due]
    return max(0.0, min([*times, now + 1.0]) - now)


def _stored_params(flow: Any, origin: Any) -> dict[str, Any]:
    """The parameters of the run being resumed, as close to their first values as its JSON record allows.

    JSON turns a default like ``{1: "a"}`` into ``{"1": "a"}``; a stored value that is the default's JSON form
    is the default itself, so a resumed run sees exactly what the first one saw."""
    import json

    declared = flow._parameters()
    stored = origin.params
    gone = sorted(set(stored) - set(declared))
    new = sorted(n for n, p in declared.items() if p.required and n not in stored)
    if gone or new:
        change = (f"had the parameters {gone}, which the flow no longer declares" if gone else
                  f"has no value for the required parameters {new} added since")
        raise InvalidInputError(field="run", value=origin.run_id[:12],
                                expected=f"a run of the flow as it is now: that run {change} ({sorted(declared)}); "
                                "start a new run instead")
    values = dict(stored)
    for name, value in stored.items():
        param = declared[name]
        if not param.required and json.loads(json.dumps(param.default, default=str)) == value:
            values[name] = param.default
    return values


def _check_tag(tag: Any) -> str:
    from mloop._util.names import check_key

    return check_key(tag, "tag")


def run_flow(flow_file: str, *, params: dict[str, Any] | None = None, tags: list[str] | None = None,
             executor: Any = None, flow_class: str | None = None, settings: Settings | None = None,
             origin_run: str | None = None, resume_from: str | None = None, echo: Any = None,
             raise_on_failure: bool = True, on_created: Any = None, progress: Any = None,
             resume: bool = False) -> Outcome:
    """Run (or resume) the flow in ``flow_file``; raises FlowFailedError naming the failed step.

    ``origin_run`` resumes that run; ``resume=True`` without it resumes the flow's latest run."""
    runtime = Runtime(flow_file, flow_class=flow_class, settings=settings, params=params, tags=tags,
                      executor=executor, origin_run=origin_run, resume_from=resume_from, echo=echo,
                      on_created=on_created, progress=progress, resume=resume)
    outcome = runtime.run()
    if outcome.failed and raise_on_failure:
        raise FlowFailedError(outcome.error or "a step failed", outcome.run_id)
    return outcome


def default_echo() -> Any:
    return (lambda msg: print(msg, file=sys.stderr, flush=True))
