"""The Ray executor: tasks as Ray tasks on ``ray.init()`` or a cluster address, sized by ``@resources``.

Workers read and write artifacts through the artifact store, so a remote worker sees the same data.
The flow's source travels with each task: a worker on this machine runs the file itself (so modules next
to it import), a worker on another machine runs a copy of the source.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import tempfile
import time
import uuid
from typing import Any

from mloop._util.optional import require

_MB = 1024 * 1024


def _run_on_worker(source: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Inside a Ray worker: find or write the flow file, run the task, keep its output as logs."""
    from mloop.flows.task import artifact_store, execute

    spec = dict(spec, flow_file=_flow_file_on_worker(source, spec["flow_file"]))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = execute(spec)
    store = artifact_store(spec["artifact_root"])
    result["logs"] = {"stdout": store.put(out.getvalue().encode()), "stderr": store.put(err.getvalue().encode())}
    result["worker"] = f"{os.uname().nodename}:{os.getpid()}"
    return result


def _flow_file_on_worker(source: str, original: str) -> str:
    """The file this worker loads the flow from.

    The original file when this machine has it with the run's content: modules next to it import and
    ``__file__`` is the same as on the local executor. Otherwise (another machine, or the file was edited
    since the run started) a copy of the run's source in a temporary folder, with the original folder on
    ``sys.path`` when it exists, so that modules next to the flow still import where they can.
    """
    digest = hashlib.sha256(source.encode()).hexdigest()
    if _file_digest(original) == digest:
        return original
    original_folder = os.path.dirname(original)
    if os.path.isdir(original_folder) and original_folder not in sys.path:
        sys.path.insert(0, original_folder)  # load_flow puts the copy's folder before it: the copy wins
    return _write_copy(source, digest[:16], os.path.basename(original))


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _write_copy(source: str, digest: str, file_name: str) -> str:
    folder = os.path.join(tempfile.gettempdir(), "mloop-ray-flows", digest)
    path = os.path.join(folder, file_name)
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    return path


def _largest_node(ray: Any) -> dict[str, float]:
    """Each resource's amount on the node that has most of it: a task runs on one node, never on two."""
    nodes = [node.get("Resources") or {} for node in ray.nodes() if node.get("Alive")]
    if not nodes:
        return dict(ray.cluster_resources())
    return {name: max(node.get(name, 0.0) for node in nodes) for name in set().union(*nodes)}


class RayExecutor:
    """Tasks on a Ray cluster (``address``) or a local Ray started here; ``@resources`` become Ray resources.

    Ray leaves a task that asks for more than any node has pending forever, so requests are checked first:
    ``cpu`` is capped at the largest node's CPUs, like the local executor caps it at its capacity (fewer
    cores make a step slower, not wrong). ``memory`` and ``gpu`` are needs, not speed-ups: a step given less
    memory is OOM-killed after running a while, one without its GPU fails or crawls, so a step asking for
    more than the largest node has fails at once, naming the step, what it asked for and what the cluster has.
    The cluster is read once per run; an autoscaling cluster's nodes that do not exist yet are not counted.
    """

    name = "ray"

    def __init__(self, address: str | None = None, **init_options: Any) -> None:
        self.ray = require("ray", extra="ray")
        if not self.ray.is_initialized():
            self.ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, **init_options)
        self.capacity = float(self.ray.cluster_resources().get("CPU", 1))
        self.largest_node = _largest_node(self.ray)
        self._remote = self.ray.remote(_run_on_worker)
        self._refs: dict[Any, str] = {}
        self._keys: dict[str, Any] = {}
        self._killed: dict[str, str] = {}
        self._refused: dict[str, dict[str, Any]] = {}

    def start(self, flow_file: str, flow_class: str) -> None:
        with open(flow_file) as f:
            self._source = f.read()
        # Workers of one run, as the local executor's fork server: Ray reuses a worker only for tasks with
        # the same runtime_env, so a worker never keeps the flow module, the modules next to it or their
        # sys.path entries from an earlier run (another flow, or this file before an edit) and runs stale code.
        # (One process per task, max_calls=1, would do it too but starts a worker per task: ~2x slower.)
        self._runtime_env = {"env_vars": {"MLOOP_FLOW_WORKERS": uuid.uuid4().hex}}

    def _cpus(self, resources: dict[str, Any]) -> float:
        return min(float(resources.get("cpu", 1) or 1), self.largest_node.get("CPU", 1.0))

    def cost(self, resources: dict[str, Any]) -> float:
        return self._cpus(resources)  # at most the largest node's CPUs, so never more than the capacity

    def unschedulable(self, resources: dict[str, Any]) -> str | None:
        """Why no node of the cluster can ever run this step's task, or None when one can."""
        gpus, have_gpus = resources.get("gpu") or 0, self.largest_node.get("GPU", 0.0)
        if gpus > have_gpus:
            return (f"no Ray node can run it: @resources(gpu={gpus}) but the largest node of "
                    f"the cluster has {have_gpus:g} GPUs (the task would wait for them forever)")
        memory, have_memory = resources.get("memory") or 0, self.largest_node.get("memory", 0.0)
        if memory * _MB > have_memory:
            return (f"no Ray node can run it: @resources(memory={memory}) MB but the largest "
                    f"node of the cluster has {have_memory / _MB:.0f} MB for tasks (the task would wait forever)")
        return None

    def submit(self, key: str, spec: dict[str, Any], log_dir: str, resources: dict[str, Any]) -> None:
        reason = self.unschedulable(resources)
        if reason is not None:  # reported by the next wait(), like any failed task
            self._refused[key] = {"ok": False, "error": reason, "permanent": True}
            return
        options: dict[str, Any] = {"num_cpus": self._cpus(resources), "max_retries": 0,
                                   "runtime_env": self._runtime_env}
        if resources.get("memory"):
            options["memory"] = int(resources["memory"]) * _MB
        if resources.get("gpu"):
            options["num_gpus"] = resources["gpu"]
        ref = self._remote.options(**options).remote(self._source, spec)
        self._refs[ref] = key
        self._keys[key] = ref

    def wait(self, timeout: float) -> list[tuple[str, dict[str, Any]]]:
        done = list(self._refused.items())
        self._refused.clear()
        if done:
            timeout = 0
        if not self._refs:
            time.sleep(timeout)
            return done
        ready, _ = self.ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self.ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        for ref in ready:
            key = self._refs.pop(ref)
            self._keys.pop(key, None)
            try:
                result = dict(self.ray.get(ref))
            except Exception as exc:  # worker died or the task was cancelled
                reason = self._killed.pop(key, None)
                result = {"ok": False, "error": reason or f"Ray task failed: {type(exc).__name__}: {exc}",
                          "killed": True}
            done.append((key, result))
        return done

    def kill(self, key: str, reason: str) -> None:
        ref = self._keys.get(key)
        if ref is not None:
            self._killed[key] = reason
            self.ray.cancel(ref, force=True)

    def close(self) -> None:
        for ref in list(self._refs):
            self.ray.cancel(ref, force=True)
        self._refs.clear()
        self._refused.clear()
