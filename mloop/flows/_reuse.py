"""Where a task's results can come from without running it: the run being resumed, or the cache.

Resume reuses a finished task of the origin run at the same path (``train/3``) when its step is not to be
re-run and all its inputs were reused too; ``@cache`` reuses the newest successful task with the same key
(the step's code with the user code it reaches, its position in a foreach, and the content of its input
artifacts), except for the steps resume re-runs (``--from`` promises a fresh run). A task whose failure
``@catch`` recorded is never a cache source: the failure may be transient.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from mloop.errors import InvalidInputError, NotFoundError
from mloop.flows._origin import Origin, read_origin
from mloop.flows.artifacts import ArtifactRef
from mloop.flows.graph import FlowGraph

if TYPE_CHECKING:
    from mloop.flows._rows import RunRow, TaskRow
    from mloop.flows.repository import FlowRepository

PARAMS = "<params>"  # the pseudo-input of the start step: the run's parameters


class Reuse:
    def __init__(self, repo: Callable[[], FlowRepository], graph: FlowGraph, flow: type) -> None:
        self._repo = repo  # called when first needed: the database may still be opening
        self.graph = graph
        self.flow = flow
        self._code: dict[str, str] = {}
        self.origin_run: RunRow | None = None
        self.origin: dict[str, TaskRow] = {}
        self.origin_artifacts: dict[str, dict[str, ArtifactRef]] = {}
        self.rerun: set[str] = set()
        self.reused_ids: set[str] = set()

    def load_origin(self, run_id: str | None, resume_from: str | None, db_url: str | None = None) -> RunRow:
        """Remember the finished tasks of the run to resume (``None``: the flow's latest run); ``resume_from``
        and what follows re-run. With ``db_url``, a SQLite database is read directly (see _origin.py)."""
        if resume_from is not None and resume_from not in self.graph.nodes:
            raise InvalidInputError(field="--from", value=resume_from,
                                    expected=f"a step of the flow {sorted(self.graph.nodes)}")
        found = read_origin(db_url, self.graph.name, run_id) if db_url else None
        run, tasks, artifacts = found if found is not None else self._origin_from_repo(run_id)
        if run.flow_name != self.graph.name:
            raise InvalidInputError(field="run", value=run_id, expected=f"a run of {self.graph.name} "
                                    f"(it is a run of {run.flow_name})")
        self.origin_run = run
        self.origin = {t.path: t for t in tasks}
        self.origin_artifacts = artifacts
        if resume_from is not None:
            self.rerun = self.graph.descendants(resume_from)
        return run

    def may_run_tasks(self) -> bool:
        """Whether resuming the loaded origin may run a task: it did not finish, or ``--from`` re-runs steps.
        A finished run resumed as it is reuses every task, so no worker needs to start for it."""
        return bool(self.rerun) or self.origin_run is None or self.origin_run.status != "finished"

    def _origin_from_repo(self, run_id: str | None) -> Origin:
        """The slow path through the repository: any database, run id prefixes, and the errors' wording."""
        repo = self._repo()
        if run_id is None:  # looked up here, on the database the run opens anyway, not on one of its own
            latest = repo.list_runs(self.graph.name, limit=1)
            if not latest:
                raise NotFoundError(f"Flow '{self.graph.name}' has no runs yet: nothing to resume; "
                                    "`mloop flow run` starts one.", field="flow")
            run_id = latest[0].run_id
        run = repo.get_run(run_id)
        tasks = [t for t in repo.tasks(run.run_id) if t.status == "finished"]
        return run, tasks, repo.artifacts([t.task_id for t in tasks])

    def cache_key(self, step: str, foreach_index: int | None, inputs: list[dict[str, ArtifactRef]]) -> str | None:
        node = self.graph[step]
        if "cache" not in node.decorators:
            return None
        if step not in self._code:
            from mloop.flows._code import code_fingerprint  # only @cache steps need it: a run starts without

            self._code[step] = code_fingerprint(getattr(self.flow, step), self.flow, frozenset(self.graph.nodes))
        content = [self.graph.name, step, self._code[step], foreach_index,
                   [sorted((name, ref[0]) for name, ref in index.items()) for index in inputs]]
        return hashlib.sha256(json.dumps(content, default=str).encode()).hexdigest()

    def find(self, step: str, path: str, inputs: list[str],
             key: str | None) -> tuple[str, TaskRow, dict[str, ArtifactRef]] | None:
        """("reused" or "cached", the source task, its artifacts), or None to run the task."""
        origin = self.origin.get(path)
        if (origin is not None and step not in self.rerun
                and all(i in self.reused_ids or i == PARAMS for i in inputs)):
            return "reused", origin, self.origin_artifacts[origin.task_id]
        if key is not None and step not in self.rerun:
            repo = self._repo()
            cached = repo.cached_task(key)
            if cached is not None:
                return "cached", cached, repo.artifacts([cached.task_id])[cached.task_id]
        return None
