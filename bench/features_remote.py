"""What going through ``mloop server`` costs the feature store, against the same store opened directly.

    python bench/features_remote.py [--entities 100000] [--rows 500000] [--rounds 5] [--reads 300]

One home with a Parquet feature view; a ``mloop server`` process over it. The same training set (``--entities``
rows, point-in-time join over ``--rows`` feature rows) is built directly and through the server (entity rows up
as Parquet, the training set back as Parquet), alternating, after a warm-up; then ``--reads`` online reads of 100
entities each. The table shows the medians of each and the ratio. Both answers are checked to be identical; the
command exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import WORK, LoadWatch, check, finish, fmt, wait_until_up  # noqa: E402

from mloop.config import Settings  # noqa: E402
from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64  # noqa: E402

PORT = 5821


def prepare(home: Path, rows: int, entities: int) -> tuple[list[object], pd.DataFrame]:
    rng = np.random.default_rng(0)
    data = home / "data" / "trips"
    data.mkdir(parents=True)
    start = pd.Timestamp("2026-03-01", tz="UTC")
    frame = pd.DataFrame({"zone_id": rng.integers(0, 5_000, rows),
                          "event_timestamp": start + pd.to_timedelta(rng.integers(0, 30 * 86400, rows), unit="s"),
                          "avg_fare": rng.normal(20, 5, rows), "trips": rng.integers(0, 50, rows)})
    frame.loc[rng.random(rows) < 0.05, "avg_fare"] = np.nan
    frame.to_parquet(data / "part-0.parquet", index=False)
    zone = Entity("zone", join_keys=["zone_id"], key_types=[Int64])
    view = FeatureView("trips", entities=[zone], schema=[Field("avg_fare", Float64), Field("trips", Int64)],
                       source=FileSource(str(data)), ttl=pd.Timedelta(days=2).to_pytimedelta())
    asked = pd.DataFrame({"zone_id": rng.integers(0, 5_500, entities),
                          "event_timestamp": start + pd.to_timedelta(rng.integers(0, 31 * 86400, entities), unit="s")})
    return [zone, view], asked


def start_server(home: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLOOP_FEATURE_SOURCE_ROOTS": str(home / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "server", "--home", str(home), "--port", str(PORT)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return wait_until_up(proc, f"http://127.0.0.1:{PORT}")


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    watch = LoadWatch()
    home = WORK / "features-remote"
    shutil.rmtree(home, ignore_errors=True)
    definitions, asked = prepare(home, args.rows, args.entities)
    direct = FeatureStore(settings=Settings.load(home=str(home), tracking_uri=""))
    direct.apply(definitions)
    direct.materialize(end=pd.Timestamp("2026-04-02", tz="UTC").to_pydatetime())
    server = start_server(home)
    try:
        remote = FeatureStore(settings=Settings.load(home=str(WORK / "features-client"),
                                                     tracking_uri=f"http://127.0.0.1:{PORT}"))
        times: dict[str, list[float]] = {"direct": [], "through the server": []}
        answers = {}
        for i in range(args.rounds + 1):  # round 0 warms both up and is not counted
            order = [("direct", direct), ("through the server", remote)]
            for name, store in order if i % 2 else order[::-1]:
                elapsed, answers[name] = timed(store.training_set, asked, ["trips:avg_fare", "trips:trips"],
                                               log_to_run=False)
                if i:
                    times[name].append(elapsed)
        check(answers["direct"].equals(answers["through the server"]), "the two training sets differ")
        reads: dict[str, list[float]] = {"direct": [], "through the server": []}
        keys = {"zone_id": list(range(100))}
        for _ in range(args.reads):
            for name, store in (("direct", direct), ("through the server", remote)):
                elapsed, answers[name] = timed(store.online, ["trips:avg_fare", "trips:trips"], entities=keys)
                reads[name].append(elapsed)
        check(answers["direct"].to_json() == answers["through the server"].to_json(), "the online answers differ")
    finally:
        server.terminate()
        server.wait(30)
    report(times, reads, args)
    finish(watch)


def report(times: dict[str, list[float]], reads: dict[str, list[float]], args: argparse.Namespace) -> None:
    import statistics

    print(f"training set of {args.entities:,} entity rows over {args.rows:,} feature rows "
          f"(median of {args.rounds}); online read of 100 entities (median of {args.reads})")
    print(f"{'':22}{'training set':>16}{'online read':>16}")
    for name in times:
        print(f"{name:22}{fmt(statistics.median(times[name]), 's'):>16}{fmt(statistics.median(reads[name]), 's'):>16}")
    ts = statistics.median(times["through the server"]) / statistics.median(times["direct"])
    rd = statistics.median(reads["through the server"]) / statistics.median(reads["direct"])
    print(f"{'server / direct':22}{ts:>15.2f}x{rd:>15.2f}x")


if __name__ == "__main__":
    main()
