"""Flows: Python classes whose ``@step`` methods run as tasks that persist artifacts, resume and scale out.

A map of the package::

    spec.py       FlowSpec, @step, Parameter, @retry @timeout @resources @catch @cache @schedule
    graph.py      the static graph from the steps' AST, checked before anything runs
    artifacts.py  content-addressed artifacts (Parquet, .npy, cloudpickle) in the blob store
    runtime.py    the orchestrator: launch, record, retry, time out, resume, cache
    executors/    local (a fork server, one process per task) and Ray
    client.py     read past runs: get("TrainFlow").latest_run["train"].task.data.model
    scheduler.py  cron schedules started by ``mloop scheduler``

>>> from mloop.flows import FlowSpec, step
>>> issubclass(FlowSpec, object) and callable(step)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloop._util.lazy import lazy_getattr
from mloop.flows.spec import FlowSpec, Parameter, cache, catch, resources, retry, schedule, step, timeout

if TYPE_CHECKING:
    from mloop.config import Settings

__all__ = ["current", "Flow", "FlowFailedError", "FlowRun", "FlowSpec", "Parameter", "Task", "cache", "catch", "get",
           "get_run", "list_runs", "resources", "resume", "retry", "run", "schedule", "step", "timeout"]

_LAZY = {
    "current": "mloop.flows._current",
    "Flow": "mloop.flows.client",
    "FlowRun": "mloop.flows.client",
    "Task": "mloop.flows.client",
    "get": "mloop.flows.client",
    "get_run": "mloop.flows.client",
    "list_runs": "mloop.flows.client",
    "FlowFailedError": "mloop.flows.runtime",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def _executor(executor: Any, max_workers: int | None, ray_address: str | None) -> Any:
    if executor is None or executor == "local":
        from mloop.flows.executors.local import LocalExecutor

        return LocalExecutor(max_workers)
    if executor == "ray":
        from mloop.flows.executors.ray import RayExecutor

        return RayExecutor(ray_address)
    if isinstance(executor, str):
        from mloop.errors import InvalidInputError

        raise InvalidInputError(field="executor", value=executor, expected="'local', 'ray' or an executor object")
    return executor


def run(flow_file: str, params: dict[str, Any] | None = None, *, tags: list[str] | None = None,
        executor: Any = None, max_workers: int | None = None, ray_address: str | None = None,
        flow_class: str | None = None, raise_on_failure: bool = True, echo: Any = None,
        settings: Settings | None = None) -> Any:
    """Run the flow defined in ``flow_file``; returns its FlowRun (raises FlowFailedError when a step fails).

    ``settings`` says where runs and artifacts go (default: the environment, as ``Settings.load()``).
    """
    from mloop.flows.client import get_run
    from mloop.flows.runtime import run_flow

    outcome = run_flow(flow_file, params=params, tags=tags, executor=_executor(executor, max_workers, ray_address),
                       flow_class=flow_class, raise_on_failure=raise_on_failure, echo=echo, settings=settings)
    return get_run(outcome.run_id, settings=settings)


def resume(flow_file: str, run_id: str | None = None, *, from_step: str | None = None,
           tags: list[str] | None = None, executor: Any = None, max_workers: int | None = None,
           ray_address: str | None = None, flow_class: str | None = None, raise_on_failure: bool = True,
           echo: Any = None, settings: Settings | None = None) -> Any:
    """A new run reusing the finished tasks of ``run_id`` (default: the latest run) and re-running from the failed
    step, or from ``from_step`` and everything after it."""
    from mloop.flows.client import get_run
    from mloop.flows.runtime import run_flow

    outcome = run_flow(flow_file, tags=tags, executor=_executor(executor, max_workers, ray_address),
                       flow_class=flow_class, origin_run=run_id, resume=True, resume_from=from_step,
                       raise_on_failure=raise_on_failure, echo=echo, settings=settings)
    return get_run(outcome.run_id, settings=settings)
