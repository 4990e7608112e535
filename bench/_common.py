"""Shared benchmark plumbing: the peer's own virtualenv, medians, the ratio table, the machine's load while a
bench ran, and the wrong answers that make a bench exit non-zero."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"


def peer_python(name: str, requirements: list[str]) -> Path:
    """The python of ``bench/.venv-<name>``, created with ``requirements`` from PyPI on first use."""
    venv = BENCH / f".venv-{name}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    wanted = " ".join(requirements)
    if not marker.exists() or marker.read_text() != wanted:
        print(f"setting up {venv.name} with {wanted} (first run only)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
        marker.write_text(wanted)
    return python


def run_peer(python: Path, script: str, *args: str, timeout: float = 3600) -> dict[str, Any]:
    """Run a peer workload script in its own interpreter; it prints one JSON object last."""
    out = subprocess.run([str(python), str(BENCH / "peers" / script), *args], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def median_time(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Median wall time of ``fn`` in seconds over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ratio(ours: float | None, theirs: float | None, higher_is_better: bool) -> str:
    if not ours or not theirs:
        return "-"
    value = ours / theirs if higher_is_better else theirs / ours
    return f"{value:,.1f}x"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"
    return f"{value:,.0f} {unit}"


def wait_until_up(proc: subprocess.Popen[bytes], url: str, seconds: float = 60) -> subprocess.Popen[bytes]:
    """``proc`` once ``url``/health answers 200 (standard library only); it is killed, and the bench stops, when it
    does not within ``seconds``."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server at {url} did not start")


def peak_mb() -> float:
    """This process's own peak resident memory in MB (standard library only: peer scripts import it too).

    Not ru_maxrss: Linux carries it over fork and exec, so a child would report its parent's peak as its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
class LoadWatch:
    """Samples the 1-minute load average every ``every`` seconds in a daemon thread, from creation on.

    A shared machine's load changes every figure: each bench prints what it was while it ran.

        >>> watch = LoadWatch(); watch.summary().startswith("machine:")
        True
    """

    def __init__(self, every: float = 2.0) -> None:
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._every = every
        threading.Thread(target=self._sample, daemon=True, name="bench-load").start()

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> str:
        """One line: CPUs, and the load average's min / median / max over the samples so far."""
        s = self.samples
        return (f"machine: {os.cpu_count()} CPUs, {platform.machine()}; 1-min load average while it ran: min "
                f"{min(s):.1f}, median {statistics.median(s):.1f}, max {max(s):.1f} ({len(s)} samples; "
                "above the CPU count, other processes shared the machine)")


_WRONG: list[str] = []


def check(condition: object, message: str) -> bool:
    """Record a wrong answer when ``condition`` is false (printed at once); ``finish()`` then exits 1.

        >>> check(1 + 1 == 2, "arithmetic")
        True
    """
    if not condition:
        _WRONG.append(message)
        print(f"WRONG: {message}", file=sys.stderr, flush=True)
    return bool(condition)


def finish(watch: LoadWatch | None = None) -> None:
    """Print the load line, then exit non-zero when any ``check`` failed."""
    if watch is not None:
        print(watch.summary())
    if _WRONG:
        print(f"{len(_WRONG)} wrong answer(s):", *_WRONG, sep="\n  ", file=sys.stderr)
        sys.exit(1)
