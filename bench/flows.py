"""Flows benchmark: mloop's local executor against Metaflow's local runtime (both from the command line).

    python bench/flows.py [--repeat 3] [--skip-peer]

Workloads, each the wall time of the whole command (interpreter start included), medians of ``--repeat``
(the commands of a group take turns, so a shared machine's load hits them alike):
- a 10-step linear flow of no-op steps, and a foreach over 100 tiny tasks with its join;
- a 5-step linear flow of no-op steps: run whole, then resumed from its last step (4 steps reused, 1 run;
  ``mloop flow resume F --from end`` and ``python F resume end``), and (mloop) resumed with all 5 reused;
- a DataFrame of 1,000,000 x 10 random float64 (80 MB) made in one step and read in the next: the handoff
  (from the end of the first step's code to the frame in hand in the second: store, task end, next task,
  load) and the read alone, timed inside the steps; the same flow with 10 rows gives the handoff's floor.
Metaflow runs in bench/.venv-metaflow. Exits 1 when a flow fails or the frame's shape or sum changes on the way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, LoadWatch, check, finish, fmt, peer_python, ratio, run_peer  # noqa: E402
from _flows_src import handoffs, time_commands, write  # noqa: E402

METAFLOW = ["metaflow==2.19.39", "pandas", "pyarrow", "numpy"]


def measure_mloop(repeat: int) -> dict[str, float]:
    work = WORK / "flows" / "mloop"
    shutil.rmtree(work, ignore_errors=True)
    paths = write("mloop", work)
    env = dict(os.environ, MLOOP_HOME=str(work / "home"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                        os.environ.get("PYTHONPATH")])))
    mloop = [sys.executable, "-m", "mloop", "flow"]
    subprocess.run([*mloop, "run", str(paths["linear"])], env=env, check=True,
                   capture_output=True)  # creates the database once, as Metaflow's first run creates its folders
    commands = {"linear": [*mloop, "run", str(paths["linear"])], "foreach": [*mloop, "run", str(paths["foreach"])]}
    resume = {"run5": [*mloop, "run", str(paths["linear5"])],
              "resume5_from_end": [*mloop, "resume", str(paths["linear5"]), "--from", "end"],
              "resume5_all": [*mloop, "resume", str(paths["linear5"])]}
    return run_all([commands, resume], paths, env, work, repeat, "mloop", lambda p: [*mloop, "run", str(p)])


def run_all(groups: list[dict[str, list[str]]], paths: dict[str, Path], env: dict[str, str], work: Path,
            repeat: int, name: str, run_frame: Any) -> dict[str, float]:
    """Time each group of commands, taking turns within it (medians of wall and CPU seconds), then the two
    frame flows (their handoffs, timed inside the steps)."""
    result: dict[str, float] = {}
    for commands in groups:
        for key, (wall, cpu) in time_commands(commands, repeat, env, work).items():
            result[key], result[f"{key}_cpu"] = wall, cpu
            print(f"  {name} {key}: {wall:.2f} s, CPU {cpu:.2f} s", flush=True)
    for size in ("frame_1m", "frame_tiny"):
        out = work / f"{size}.jsonl"
        out.unlink(missing_ok=True)
        timed = time_commands({size: run_frame(paths[size])}, repeat, dict(env, BENCH_FRAME_OUT=str(out)), work)
        result[f"{size}_run"] = timed[size][0]
        found = handoffs(out)
        result[f"{size}_handoff"], result[f"{size}_load"] = found["handoff"], found["load"]
        result[f"{size}_ok"], result[f"{size}_rows"] = found["ok"], found["rows"]
        print(f"  {name} {size}: handoff {found['handoff']:.3f} s, load {found['load']:.3f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    watch = LoadWatch()
    ours = measure_mloop(args.repeat)
    peer: dict[str, float] = {}
    version = "-"
    if not args.skip_peer:
        print("  metaflow...", flush=True)
        peer = run_peer(peer_python("metaflow", METAFLOW), "metaflow_flows.py", str(WORK / "flows" / "metaflow"),
                        str(args.repeat))
        version = str(peer.pop("version"))
        for key, value in peer.items():
            print(f"  metaflow {key}: {value:.3f}")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Flows: mloop vs Metaflow {version} (medians of {args.repeat}; ratio = how many times "
                        "faster mloop is)")
    for column in ("workload", "mloop", "metaflow", "ratio", "target"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    rows = [("10-step linear flow, no-op steps", "linear", ">= 3x"),
            ("foreach over 100 tiny tasks + join", "foreach", ">= 3x"),
            ("5-step linear flow: run", "run5", ""),
            ("5-step linear flow: resume from end (4 reused)", "resume5_from_end", "< run"),
            ("5-step linear flow: resume, all 5 reused (mloop)", "resume5_all", "< run"),
            ("1M x 10 float64 frame, step to step: handoff", "frame_1m_handoff", ">= 5x"),
            ("  of which the next step's read", "frame_1m_load", ""),
            ("  the same with 10 rows (the floor)", "frame_tiny_handoff", ""),
            ("  the whole 3-step flow with the 1M frame", "frame_1m_run", ""),
            ("CPU seconds (all processes): linear", "linear_cpu", ""),
            ("CPU seconds (all processes): foreach", "foreach_cpu", ""),
            ("CPU seconds (all processes): 5-step run", "run5_cpu", ""),
            ("CPU seconds (all processes): resume from end", "resume5_from_end_cpu", "< run"),
            ("CPU seconds (all processes): resume, all reused", "resume5_all_cpu", "< run")]
    for label, key, target in rows:
        table.add_row(label, fmt(ours.get(key), "s"), fmt(peer.get(key), "s"),
                      ratio(ours.get(key), peer.get(key), False), target)
    Console(width=160).print(table)
    for side, found in (("mloop", ours), ("metaflow", peer)):
        for size, rows_ in (("frame_1m", 1_000_000), ("frame_tiny", 10)):
            if f"{size}_ok" in found:
                check(found[f"{size}_ok"] == 1.0 and found[f"{size}_rows"] == rows_,
                      f"{side}: the {size} frame arrived with another shape or sum")
    # CPU seconds, not wall: on a shared machine wall time follows the neighbours' load more than ours
    for key, what in (("resume5_from_end", "resuming 4 finished steps of 5"), ("resume5_all", "reusing all 5")):
        check(ours[f"{key}_cpu"] < ours["run5_cpu"], f"mloop: {what} costs no less CPU than running all 5 "
              f"({ours[f'{key}_cpu']:.2f} s against {ours['run5_cpu']:.2f} s)")
    finish(watch)


if __name__ == "__main__":
    main()
