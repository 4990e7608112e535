"""The fork server of the local executor: imports the flow once, then forks one process per task.

Protocol (JSON lines): requests on stdin ``{"key", "spec", "result_path", "log_dir"}``; events on stdout
``{"event": "started", "key", "pid"}`` and ``{"event": "exited", "key", "pid", "code"}`` (code < 0: signal).
The server stays single-threaded so that forking it is safe.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from typing import Any

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                     "NUMEXPR_NUM_THREADS")


def _limit_threads(threads: int) -> None:
    """Size native thread pools to the task's CPUs, unless the user set them: environment variables for libraries
    the step loads, threadpoolctl (when installed) for those the flow file already loaded in the fork server."""
    if threads < 1 or any(os.environ.get(v) for v in _THREAD_VARIABLES):
        return
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads)


def _child(request: dict[str, Any]) -> None:
    """In the forked process: redirect output to the task's log files, run, write the result, exit."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setpgid(0, 0)
        log_dir = request["log_dir"]
        os.makedirs(log_dir, exist_ok=True)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            out = os.open(os.path.join(log_dir, f"{name}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, fd)
            os.close(out)
        _limit_threads(int(request.get("threads") or 0))
        from mloop.flows.task import artifact_store, execute, store_logs

        result = execute(request["spec"])
        sys.stdout.flush()
        sys.stderr.flush()
        result["logs"] = store_logs(artifact_store(request["spec"]["artifact_root"]), log_dir)
        tmp = request["result_path"] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f)
        os.replace(tmp, request["result_path"])
        code = 0
    except BaseException:  # never return into the server's loop
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(flow_file: str, flow_class: str) -> None:
    import pickle  # noqa: F401
    import traceback  # noqa: F401

    import cloudpickle  # noqa: F401  (every fork starts warm: the flow, the store, the pickler, what tasks use)

    from mloop.flows import _current  # noqa: F401
    from mloop.flows.task import artifact_store, load_flow
    from mloop.store.blob import local  # noqa: F401

    try:
        load_flow(flow_file, flow_class or None)
    except BaseException:  # the orchestrator loads the file too and reports the error (or the Ctrl-C) properly
        sys.exit(3)
    out = sys.stdout
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    # Ctrl-C reaches the whole foreground process group, this server too: the orchestrator reports it, so the
    # server only notes it (a flag, not KeyboardInterrupt, which could strike between fork and bookkeeping).
    interrupted: list[int] = []
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job of a script ignores Ctrl-C
        signal.signal(signal.SIGINT, lambda signum, _: interrupted.append(signum))
    stdin = sys.stdin.buffer.raw  # type: ignore[attr-defined]
    pending = b""
    children: dict[int, str] = {}
    closed = False
    emit = _emitter(out)
    emit({"event": "ready", "pid": os.getpid()})
    while (not closed or children) and not interrupted:
        try:
            readable, _, _ = select.select([wake_r] if closed else [stdin, wake_r], [], [], 1.0)
        except InterruptedError:
            readable = []
        if stdin in readable:
            chunk = os.read(stdin.fileno(), 1 << 16)
            if not chunk:
                closed = True
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                artifact_store(request["spec"]["artifact_root"])
                pid = os.fork()
                if pid == 0:
                    _child(request)
                children[pid] = request["key"]
                emit({"event": "started", "key": request["key"], "pid": pid})
        if wake_r in readable:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        _reap(children, emit)
    if interrupted:
        _kill(children)
        sys.exit(130)


def _kill(children: dict[int, str]) -> None:
    """Tasks the orchestrator may not know of yet (their "started" unread) must not outlive the server."""
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)  # each task leads its own process group...
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)  # ...once it has run setpgid: a task forked just now may not have
            except ProcessLookupError:
                pass


def _emitter(out: Any) -> Any:
    def emit(event: dict[str, Any]) -> None:
        out.write(json.dumps(event) + "\n")
        out.flush()

    return emit


def _reap(children: dict[int, str], emit: Any) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        key = children.pop(pid, None)
        if key is None:
            continue
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        emit({"event": "exited", "key": key, "pid": pid, "code": code})


if __name__ == "__main__":
    try:
        serve(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
    except KeyboardInterrupt:  # Ctrl-C while warming up, before serve() handles it; the orchestrator reports it
        sys.exit(130)
