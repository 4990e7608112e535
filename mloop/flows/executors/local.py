"""The local executor: every task in its own process, forked from a warm fork server, so a task costs milliseconds.

A task whose process dies (``kill -9``, out of memory) is reported as failed with the signal.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

from mloop.errors import BackendError


class LocalExecutor:
    """Tasks as processes on this machine, at most ``max_workers`` CPUs' worth at once.

    The default, twice the CPUs (at least 4), keeps the CPUs busy while tasks wait on I/O or start up.
    """

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.capacity = float(max_workers or max(4, 2 * (os.cpu_count() or 2)))
        self._proc: subprocess.Popen[bytes] | None = None
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._pids: dict[str, int] = {}
        self._results: dict[str, str] = {}
        self._killed: dict[str, str] = {}
        self._tmp = tempfile.mkdtemp(prefix="mloop-flow-")

    def start(self, flow_file: str, flow_class: str) -> None:
        """Start the fork server for ``flow_file`` (once; a second call for the same flow does nothing)."""
        if self._proc is not None:
            return
        env = dict(os.environ)
        self._proc = subprocess.Popen([sys.executable, "-m", "mloop.flows.executors._zygote", flow_file, flow_class],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        threading.Thread(target=self._read, daemon=True, name="mloop-flow-events").start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self._events.put(json.loads(line))
            except ValueError:
                continue
        self._events.put({"event": "server-exited"})

    def submit(self, key: str, spec: dict[str, Any], log_dir: str, resources: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        result_path = os.path.join(self._tmp, f"{key}.json")
        self._results[key] = result_path  # also marks the server as used (see close)
        # Native thread pools (OpenMP, BLAS) get the CPUs the task reserved, as on Ray: four 1-CPU tasks each
        # spinning up one OpenMP thread per core oversubscribe the machine, and OpenMP's spin-waits make that
        # many times slower than running them with one thread each.
        threads = max(1, min(round(float(resources.get("cpu", 1) or 1)), os.cpu_count() or 1))
        request = {"key": key, "spec": spec, "result_path": result_path, "log_dir": log_dir, "threads": threads}
        try:
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise BackendError(f"The local task server stopped ({exc}); see the messages above.") from exc

    def cost(self, resources: dict[str, Any]) -> float:
        """A task's share of the machine in CPU units: its CPUs, or its ``memory`` (MB) as the same fraction of
        the capacity as of this machine's RAM, whichever is larger; capped at the whole capacity (it runs alone).
        Two tasks that each want 60% of the RAM therefore never run side by side."""
        cpus = float(resources.get("cpu", 1) or 1)
        memory = float(resources.get("memory") or 0)
        memory_share = memory / _ram_mb() * self.capacity if memory else 0.0
        return min(max(cpus, memory_share), self.capacity)

    def wait(self, timeout: float) -> list[tuple[str, dict[str, Any]]]:
        """Tasks that ended within ``timeout`` seconds, with their results."""
        done = []
        try:
            event = self._events.get(timeout=max(timeout, 0))
        except queue.Empty:
            return done
        while True:
            kind = event.get("event")
            if kind == "started":
                self._pids[event["key"]] = event["pid"]
            elif kind == "exited":
                done.append((event["key"], self._result(event["key"], event["code"])))
            elif kind == "server-exited":
                raise BackendError("The local task server exited unexpectedly; rerun with the same command "
                                   "or resume the run.")
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return done

    def _result(self, key: str, code: int) -> dict[str, Any]:
        self._pids.pop(key, None)
        path = self._results.pop(key)
        reason = self._killed.pop(key, None)
        if code == 0 and os.path.exists(path):
            with open(path) as f:
                result = dict(json.load(f))
            os.unlink(path)
            return result
        if reason:
            return {"ok": False, "error": reason, "killed": True}
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            return {"ok": False, "error": f"task process died (killed by signal {-code}, {name})", "killed": True}
        return {"ok": False, "error": f"task process exited with code {code} without a result"}

    def kill(self, key: str, reason: str) -> None:
        pid = self._pids.get(key)
        if pid is None:
            return
        self._killed[key] = reason
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def pid(self, key: str) -> int | None:
        return self._pids.get(key)

    def close(self) -> None:
        if self._proc is not None and not self._results:
            # never given a task (a resume that reused every step): stop it now instead of waiting for the
            # imports it is still doing; it has forked nothing
            self._proc.kill()
        if self._proc is not None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
        import shutil

        shutil.rmtree(self._tmp, ignore_errors=True)


def _ram_mb() -> float:
    import psutil

    return psutil.virtual_memory().total / (1 << 20)
