"""The Ray executor: tasks as Ray tasks on ``ray.init()`` or a cluster address, sized by ``@resources``.

Workers read and write artifacts through the artifact store, so a remote worker sees the same data;
the flow's source travels with each task, so workers need no copy of the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import time
from typing import Any

from mloop._util.optional import require


def _run_on_worker(source: str, file_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Inside a Ray worker: write the flow's source once, run the task, keep its output as logs."""
    from mloop.flows.task import artifact_store, execute

    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), "mloop-ray-flows", digest)
    path = os.path.join(folder, file_name)
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    spec = dict(spec, flow_file=path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = execute(spec)
    store = artifact_store(spec["artifact_root"])
    result["logs"] = {"stdout": store.put(out.getvalue().encode()), "stderr": store.put(err.getvalue().encode())}
    result["worker"] = f"{os.uname().nodename}:{os.getpid()}"
    return result


class RayExecutor:
    """Tasks on a Ray cluster (``address``) or a local Ray started here; ``@resources`` become Ray resources."""

    name = "ray"

    def __init__(self, address: str | None = None, **init_options: Any) -> None:
        self.ray = require("ray", extra="ray")
        if not self.ray.is_initialized():
            self.ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, **init_options)
        self.capacity = float(self.ray.cluster_resources().get("CPU", 1))
        self._remote = self.ray.remote(_run_on_worker)
        self._refs: dict[Any, str] = {}
        self._keys: dict[str, Any] = {}
        self._killed: dict[str, str] = {}

    def start(self, flow_file: str, flow_class: str) -> None:
        with open(flow_file) as f:
            self._source = f.read()
        self._file_name = os.path.basename(flow_file)

    def cost(self, resources: dict[str, Any]) -> float:
        return min(float(resources.get("cpu", 1) or 1), self.capacity)

    def submit(self, key: str, spec: dict[str, Any], log_dir: str, resources: dict[str, Any]) -> None:
        options: dict[str, Any] = {"num_cpus": float(resources.get("cpu", 1) or 1), "max_retries": 0}
        if resources.get("memory"):
            options["memory"] = int(resources["memory"]) * 1024 * 1024
        if resources.get("gpu"):
            options["num_gpus"] = resources["gpu"]
        ref = self._remote.options(**options).remote(self._source, self._file_name, spec)
        self._refs[ref] = key
        self._keys[key] = ref

    def wait(self, timeout: float) -> list[tuple[str, dict[str, Any]]]:
        if not self._refs:
            time.sleep(timeout)
            return []
        ready, _ = self.ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self.ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        done = []
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
