"""Flows benchmark: mloop's local executor against Metaflow's local runtime (both from the command line).

    python bench/flows.py [--repeat 3] [--skip-peer]

Workloads: a 10-step linear flow of no-op steps and a foreach over 100 tiny tasks (with its join), as the wall
time of the whole command (interpreter start included); the round trip of a 1,000,000-row DataFrame artifact
between two steps (stored as a task's artifact, then loaded back) through each one's artifact store.
Metaflow runs in bench/.venv-metaflow.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, fmt, peer_python, ratio, run_peer  # noqa: E402
from _flows_src import time_command, write  # noqa: E402

METAFLOW = ["metaflow==2.19.39", "pandas", "pyarrow", "numpy"]


def measure_mloop(repeat: int) -> dict[str, float]:
    work = WORK / "flows" / "mloop"
    shutil.rmtree(work, ignore_errors=True)
    paths = write("mloop", work)
    paths = {k: v for k, v in paths.items() if k in ("linear", "foreach")}
    env = dict(os.environ, MLOOP_HOME=str(work / "home"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                        os.environ.get("PYTHONPATH")])))
    subprocess.run([sys.executable, "-m", "mloop", "flow", "run", str(paths["linear"])], env=env, check=True,
                   capture_output=True)  # creates the database once, as Metaflow's first run creates its folders
    result = {}
    for key, path in paths.items():
        result[key], result[f"{key}_cpu"] = time_command([sys.executable, "-m", "mloop", "flow", "run", str(path)],
                                                         repeat, env, work)
        print(f"  mloop {key}: {result[key]:.2f} s", flush=True)
    result["frame_trip"], result["frame_trip_cpu"] = frame_round_trip(work / "frame-store", max(repeat, 5))
    return result


def frame_round_trip(root: Path, repeat: int) -> tuple[float, float]:
    """Median seconds to store a 1,000,000-row DataFrame as an artifact and load it back (Parquet, by content)."""
    from _flows_src import big_frame

    from mloop.flows.artifacts import ArtifactStore
    from mloop.store.blob import open_blob_store

    store = ArtifactStore(open_blob_store(str(root)))
    times, cpu = [], []
    for i in range(repeat + 1):  # the first round warms up (imports, thread pools) and is not counted
        df = big_frame(i)
        start, start_cpu = time.perf_counter(), time.process_time()
        back = store.load(store.save(df))
        if i:
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        assert back.equals(df)
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    ours = measure_mloop(args.repeat)
    peer: dict[str, float] = {}
    version = "-"
    if not args.skip_peer:
        print("  metaflow...", flush=True)
        peer = run_peer(peer_python("metaflow", METAFLOW), "metaflow_flows.py", str(WORK / "flows" / "metaflow"),
                        str(args.repeat))
        version = str(peer.pop("version"))
        for key in ("linear", "foreach", "frame_trip", "frame_trip_cpu", "linear_cpu", "foreach_cpu"):
            print(f"  metaflow {key}: {peer[key]:.2f} s")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Flows: mloop vs Metaflow {version} (medians of {args.repeat}; ratio = how many times "
                        "faster mloop is)")
    for column in ("workload", "mloop", "metaflow", "ratio", "target"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    rows = [("10-step linear flow, no-op steps", "linear", ">= 3x"),
            ("foreach over 100 tiny tasks + join", "foreach", ">= 3x"),
            ("1,000,000-row DataFrame artifact: store + load", "frame_trip", ">= 5x"),
            ("  CPU seconds (user+sys, the process): frame", "frame_trip_cpu", ""),
            ("  CPU seconds (user+sys, all processes): linear", "linear_cpu", ""),
            ("  CPU seconds (user+sys, all processes): foreach", "foreach_cpu", "")]
    for label, key, target in rows:
        table.add_row(label, fmt(ours.get(key), "s"), fmt(peer.get(key), "s"),
                      ratio(ours.get(key), peer.get(key), False), target)
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
