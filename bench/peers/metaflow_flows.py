"""Metaflow's side of bench/flows.py: time `python flow.py run` for each workload (run in bench/.venv-metaflow)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _flows_src import time_command, write  # noqa: E402


def frame_round_trip(root: Path, repeat: int) -> tuple[float, float]:
    """Median seconds to save a 1,000,000-row DataFrame as a task's artifact and load it back (what passes
    between two steps), through Metaflow's local datastore."""
    from _flows_src import big_frame
    from metaflow.datastore import FlowDataStore
    from metaflow.plugins.datastores.local_storage import LocalStorage

    store = FlowDataStore("Bench", storage_impl=LocalStorage, ds_root=str(root))
    times, cpu = [], []
    for i in range(repeat + 1):  # the first round warms up (imports, thread pools) and is not counted
        df = big_frame(i)
        start, start_cpu = time.perf_counter(), time.process_time()
        writer = store.get_task_datastore("1", "start", str(i), attempt=0, mode="w")
        writer.init_task()
        writer.save_artifacts(iter([("df", df)]))
        writer.done()
        back = store.get_task_datastore("1", "start", str(i), attempt=0, mode="r")["df"]
        if i:
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        assert back.equals(df)
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    work = Path(sys.argv[1])
    repeat = int(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    paths = write("metaflow", work)
    paths = {k: v for k, v in paths.items() if k in ("linear", "foreach")}
    env = dict(os.environ, USERNAME="bench", METAFLOW_DEFAULT_DATASTORE="local",
               METAFLOW_DATASTORE_SYSROOT_LOCAL=str(work / "store"), METAFLOW_DEFAULT_METADATA="local")
    result: dict[str, float | str] = {}
    for key, path in paths.items():
        result[key], result[f"{key}_cpu"] = time_command([sys.executable, str(path), "--no-pylint", "--quiet", "run"],
                                                         repeat, env, work)
    result["frame_trip"], result["frame_trip_cpu"] = frame_round_trip(work / "frame-store", max(repeat, 5))
    import metaflow

    result["version"] = metaflow.__version__ if hasattr(metaflow, "__version__") else "?"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
