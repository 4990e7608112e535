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
    return f"""import numpy as np
import pandas as pd


class Frame(FlowSpec):
    @step
    def start(self):
        rng = np.random.default_rng(0)
        self.df = pd.DataFrame({{"id": np.arange({rows}), "x": rng.random({rows}), "y": rng.random({rows}),
                                "zone": rng.integers(0, 300, {rows})}})
        self.next(self.use)

    @step
    def use(self):
        self.rows = len(self.df)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def big_frame(seed: int, rows: int = 1_000_000):  # type: ignore[no-untyped-def]
    """The DataFrame of the artifact round trip: 4 columns, ``rows`` rows, different bytes for each ``seed``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(rows) + seed, "x": rng.random(rows), "y": rng.random(rows),
                         "zone": rng.integers(0, 300, rows)})


def write(system: str, folder: Path) -> dict[str, Path]:
    """Write every workload's flow file for ``system`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    flows = {"linear": ("Linear", linear()), "foreach": ("Fanout", foreach()),
             "frame_1m": ("Frame", frame(1_000_000)), "frame_tiny": ("Frame", frame(10))}
    paths = {}
    for key, (name, source) in flows.items():
        path = folder / f"{key}.py"
        path.write_text(IMPORTS[system] + "\n\n" + source + MAIN[system].format(name=name))
        paths[key] = path
    return paths


def time_command(cmd: list[str], repeat: int, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Median wall seconds and median child CPU seconds of ``repeat`` runs of ``cmd`` (exits on a failure)."""
    times, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
    return statistics.median(times), statistics.median(cpu)
