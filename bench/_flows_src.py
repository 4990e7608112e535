"""The benchmark's flows, written once for mloop and once for Metaflow (the same steps, the same work)."""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from pathlib import Path

IMPORTS = {
    "mloop": "from mloop.flows import FlowSpec, step",
    "metaflow": "from metaflow import FlowSpec, step",
}
MAIN = {"mloop": "", "metaflow": "\n\nif __name__ == '__main__':\n    {name}()\n"}


def linear(steps: int = 10) -> str:
    names = ["start"] + [f"s{i}" for i in range(1, steps - 1)] + ["end"]
    body = []
    for a, b in zip(names, [*names[1:], None], strict=True):
        body += ["    @step", f"    def {a}(self):", f"        self.next(self.{b})" if b else "        pass", ""]
    return "class Linear(FlowSpec):\n" + "\n".join(body)


def foreach(width: int = 100) -> str:
    return f"""class Fanout(FlowSpec):
    @step
    def start(self):
        self.items = list(range({width}))
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.y = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def frame(rows: int) -> str:
    """One step creates a ``rows`` x 10 frame of random float64, the next reads it; the second step appends to
    the file named by $BENCH_FRAME_OUT when the frame was made (after the first step's code), when the second
    step began and when it had the frame, and the frame's shape and sum (so the bench checks the bytes came
    through)."""
    return f"""import json
import os
import time

import numpy as np
import pandas as pd


class Frame(FlowSpec):
    @step
    def start(self):
        rng = np.random.default_rng(0)
        self.df = pd.DataFrame(rng.random(({rows}, 10)), columns=[f"c{{i}}" for i in range(10)])
        self.total = float(self.df.to_numpy().sum())
        self.made_at = time.time()
        self.next(self.use)

    @step
    def use(self):
        began = time.time()
        df = self.df
        loaded = time.time()
        record = {{"made_at": self.made_at, "began": began, "loaded": loaded, "rows": len(df),
                  "columns": df.shape[1], "sum": float(df.to_numpy().sum()), "expected_sum": self.total}}
        with open(os.environ["BENCH_FRAME_OUT"], "a") as out:
            out.write(json.dumps(record) + "\\n")
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def handoffs(path: Path) -> dict[str, float]:
    """Medians over the records a frame flow appended to ``path``: ``handoff`` (the frame made in one step to
    the frame in hand in the next: store, task end, next task's start, load), ``load`` (the second step's read
    alone), ``ok`` (1.0 when every record's shape and sum match) and ``rows`` (the fewest rows seen)."""
    import json

    records = [json.loads(line) for line in path.read_text().splitlines()]
    ok = all(r["columns"] == 10 and abs(r["sum"] - r["expected_sum"]) <= 1e-6 * abs(r["expected_sum"])
             for r in records)
    return {"handoff": statistics.median(r["loaded"] - r["made_at"] for r in records),
            "load": statistics.median(r["loaded"] - r["began"] for r in records), "ok": float(ok and records != []),
            "rows": float(min(r["rows"] for r in records))}


def write(system: str, folder: Path) -> dict[str, Path]:
    """Write every workload's flow file for ``system`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    flows = {"linear": ("Linear", linear()), "foreach": ("Fanout", foreach()),
             "linear5": ("Linear", linear(5)), "frame_1m": ("Frame", frame(1_000_000)),
             "frame_tiny": ("Frame", frame(10))}
    paths = {}
    for key, (name, source) in flows.items():
        path = folder / f"{key}.py"
        path.write_text(IMPORTS[system] + "\n\n" + source + MAIN[system].format(name=name))
        paths[key] = path
    return paths


def time_commands(commands: dict[str, list[str]], repeat: int, env: dict[str, str],
                  cwd: Path) -> dict[str, tuple[float, float]]:
    """Per command, the median wall seconds and median CPU seconds (all its processes) of ``repeat`` runs.

    The commands take turns (each once per round), so a shared machine's changing load hits them alike;
    exits on a failure."""
    times: dict[str, list[float]] = {key: [] for key in commands}
    cpu: dict[str, list[float]] = {key: [] for key in commands}
    for _ in range(repeat):
        for key, cmd in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
            times[key].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[key].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if out.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return {key: (statistics.median(times[key]), statistics.median(cpu[key])) for key in commands}
