"""Feast's side of bench/features.py; runs inside bench/.venv-feast and prints JSON last.

    python feast_features.py DATA_DIR OFFLINE(file|duckdb) WARM_CALLS TTL_HOURS   (training set)
    python feast_features.py DATA_DIR file --online                             (materialize + reads)

The training set uses Feast's usual definition: a FileSource with a created timestamp column,
so ties on event time go to the latest created row. The first call in this fresh process is
the cold time; then one warm-up call and the median of WARM_CALLS more is the warm time.
"""

import json
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.repo_config import RepoConfig
from feast.types import Float64
from feast.value_type import ValueType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import peak_mb  # noqa: E402  (standard library only)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentiles(times: list[float], cpu: list[float]) -> dict[str, float]:
    times, cpu = sorted(times), sorted(cpu)
    return {"p50": times[len(times) // 2], "p99": times[int(len(times) * 0.99)], "p99cpu": cpu[int(len(cpu) * 0.99)]}


def main() -> None:
    data, offline = Path(sys.argv[1]), sys.argv[2]
    online = "--online" in sys.argv
    ttl = timedelta(days=7) if online else timedelta(hours=float(sys.argv[4]))
    tmp = Path(tempfile.mkdtemp())
    config = RepoConfig(project="bench", provider="local", registry=str(tmp / "registry.db"),
                        online_store={"type": "sqlite", "path": str(tmp / "online.db")},
                        offline_store={"type": offline}, entity_key_serialization_version=3, repo_path=str(tmp))
    store = FeatureStore(config=config)
    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
    source = FileSource(path=str(data / "features.parquet"), timestamp_field="event_timestamp",
                        created_timestamp_column="created")
    view = FeatureView(name="stats", entities=[entity], ttl=ttl, source=source,
                       schema=[Field(name=f"f{i}", dtype=Float64) for i in range(10)], online=True)
    store.apply([entity, view])
    refs = [f"stats:f{i}" for i in range(10)]
    entity_df = pd.read_parquet(data / "entities.parquet")
    result = {"version": __import__("feast").__version__}
    if not online:
        def call() -> tuple[float, float, pd.DataFrame]:
            start, cpu_start = time.perf_counter(), _cpu()
            out = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
            return time.perf_counter() - start, _cpu() - cpu_start, out

        result["cold_s"], result["cold_cpu_s"], out = call()
        call()  # warm-up
        warm = [call() for _ in range(int(sys.argv[3]))]
        result["warm_s"] = statistics.median(w[0] for w in warm)
        result["warm_cpu_s"] = statistics.median(w[1] for w in warm)
        result["training_rows"] = len(out)
        result["peak_mb"] = peak_mb()
        out.to_parquet(tmp / "out.parquet")
        result["out"] = str(tmp / "out.parquet")
    else:
        start, cpu_start = time.perf_counter(), _cpu()
        store.materialize(pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime(),
                          pd.Timestamp("2026-02-01", tz="UTC").to_pydatetime())
        result["materialize_s"] = time.perf_counter() - start
        result["materialize_cpu_s"] = _cpu() - cpu_start
        store.get_online_features(features=refs, entity_rows=[{"entity_id": 1}])
        for n, calls in ((1, 3000), (100, 300)):
            rows = [{"entity_id": i} for i in range(n)]
            times, cpu = [], []
            for _ in range(calls):
                start, cpu_start = time.perf_counter(), time.thread_time()
                store.get_online_features(features=refs, entity_rows=rows).to_dict()
                cpu.append(time.thread_time() - cpu_start)
                times.append(time.perf_counter() - start)
            result.update({f"online{n}_{k}": v for k, v in _percentiles(times, cpu).items()})
        answer = store.get_online_features(features=refs, entity_rows=[{"entity_id": i} for i in range(100)]).to_dict()
        result["online100_values"] = {f"f{i}": answer[f"f{i}"] for i in range(10)}  # checked by bench/features.py
    print(json.dumps(result))


if __name__ == "__main__":
    main()
