"""Feature-store benchmark: mloop against Feast (file and DuckDB offline stores, SQLite online).

    python bench/features.py [--rows 1000000] [--entities 10000] [--entity-rows 100000] [--rounds 5] [--skip-peer]

Identical generated data for both: 1,000,000 feature rows x 10 float features over
10,000 entities across 30 days, with nanosecond timestamps (pandas' own unit) and a
created timestamp; 5% of the rows repeat an (entity, event time) with a later created
time and other values, so the created time must break the tie. 100,000 entity rows.

Training set: Feast's usual definition (a file source with ``created_timestamp``) and
a TTL of 14 hours, which leaves a known share of rows (~14%) without features. Each side
runs in a fresh process: the first call is the *cold* time, the median of the calls after
a warm-up the *warm* time; both are printed, cold against cold and warm against warm.
``--rounds`` rounds take turns between mloop and Feast's DuckDB store (Feast's file store,
minutes a call, runs in the first round only); the table gives the medians over rounds.
Every row of every output is compared with a pandas reference (de-duplication by created
time, then ``merge_asof`` with the TTL as tolerance); a wrong answer from mloop exits
non-zero, a wrong answer from the peer is printed with the number of rows it gets wrong.

Materialize and online: 30 days online (SQLite; Redis for mloop), then online reads of
1 and 100 entities x 10 features (TTL 7 days, no created timestamp).
Feast runs in its own virtualenv (bench/.venv-feast). The machine's load average is
printed for each workload: the machine may be shared.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, fmt, peak_mb, peer_python, ratio, run_peer  # noqa: E402

FEAST = ["feast[duckdb]==0.67.0"]
START = pd.Timestamp("2026-01-01", tz="UTC")
END = pd.Timestamp("2026-02-01", tz="UTC")
REDIS = "redis://127.0.0.1:6379/0"
REFS = [f"stats:f{i}" for i in range(10)]
TTL = pd.Timedelta(days=7)
MID = START + pd.Timedelta(days=29, hours=18)  # an as_of before most entities' latest row
ONLINE_IDS = list(range(100))
TRAINING_TTL_HOURS = 14.0
TIE_SHARE = 0.05


def generate(folder: Path, rows: int, entities: int, entity_rows: int) -> None:
    """The shared data: features.parquet and entities.parquet (seeded, so both sides read the same rows)."""
    rng = np.random.default_rng(0)
    seconds = rng.integers(0, 30 * 86400, rows)
    event = (START + pd.to_timedelta(seconds, unit="s")).as_unit("ns")  # pandas' own unit, written as such
    features = pd.DataFrame({"entity_id": rng.integers(0, entities, rows).astype("int64"), "event_timestamp": event,
                             "created": event + pd.to_timedelta(rng.integers(0, 3600, rows), unit="s"),
                             **{f"f{i}": rng.random(rows) for i in range(10)}})
    # ties on (entity, event time): a later created row with other values must win
    ties = features.sample(frac=TIE_SHARE, random_state=1)
    ties = ties.assign(created=ties["created"] + pd.Timedelta(minutes=90),
                       **{f"f{i}": rng.random(len(ties)) for i in range(10)})
    features = pd.concat([features, ties], ignore_index=True).sample(frac=1, random_state=2, ignore_index=True)
    features.to_parquet(folder / "features.parquet", index=False)
    when = (START + pd.to_timedelta(rng.integers(0, 30 * 86400, entity_rows), unit="s")).as_unit("ns")
    pd.DataFrame({"entity_id": rng.integers(0, entities, entity_rows).astype("int64"), "event_timestamp": when}
                 ).to_parquet(folder / "entities.parquet", index=False)


def reference(folder: Path) -> pd.DataFrame:
    """The answer, by pandas: the latest created row per (entity, event time), then the latest event time
    at or before each entity row within the TTL."""
    feats = pd.read_parquet(folder / "features.parquet").sort_values(["event_timestamp", "created"])
    feats = feats.drop_duplicates(["entity_id", "event_timestamp"], keep="last").drop(columns=["created"])
    ent = pd.read_parquet(folder / "entities.parquet").reset_index().sort_values("event_timestamp")
    merged = pd.merge_asof(ent, feats.rename(columns={"event_timestamp": "fts"}), left_on="event_timestamp",
                           right_on="fts", by="entity_id", direction="backward",
                           tolerance=pd.Timedelta(hours=TRAINING_TTL_HOURS))
    return merged.sort_values("index").drop(columns=["index", "fts"]).reset_index(drop=True)


def _store(home: Path, online_url: str | None = None, project: str = "bench",  # type: ignore[no-untyped-def]
           ttl: timedelta = timedelta(days=7), created: str | None = None):
    from mloop.config import Settings
    from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64

    store = FeatureStore(project=project, settings=Settings.load(home=str(home)), online_url=online_url)
    entity = Entity("entity", join_keys=["entity_id"])
    store.apply([entity, FeatureView("stats", entities=[entity], schema=[Field(f"f{i}", Float64) for i in range(10)],
                                     source=FileSource(str(home.parent / "features.parquet")),
                                     ttl=ttl, created_timestamp=created)])
    return store


def training_child(folder: Path) -> None:
    """Run in a fresh interpreter: the first call (cold), then the median after a warm-up (warm), as Feast."""
    store = _store(folder / "mloop-train", ttl=timedelta(hours=TRAINING_TTL_HOURS), created="created")
    entity_df = pd.read_parquet(folder / "entities.parquet")

    def call() -> tuple[float, float, pd.DataFrame]:
        start, cpu_start = time.perf_counter(), _cpu()
        out = store.training_set(entity_df, REFS, log_to_run=False)
        return time.perf_counter() - start, _cpu() - cpu_start, out

    cold, cold_cpu, out = call()
    out.to_parquet(folder / "mloop-out.parquet")
    call()  # warm-up
    warm = [call() for _ in range(5)]
    peak = peak_mb()
    print(json.dumps({"cold_s": cold, "cold_cpu_s": cold_cpu, "warm_s": statistics.median(w[0] for w in warm),
                      "warm_cpu_s": statistics.median(w[1] for w in warm), "peak_mb": peak, "rows": len(out)}))


def training_rounds(folder: Path, want: pd.DataFrame, rounds: int, skip_peer: bool, peers: dict[str, Any],
                    checks: dict[str, tuple[bool, str]], loads: dict[str, str]) -> dict[str, float]:
    """``rounds`` rounds, each a fresh process for mloop and one for Feast's DuckDB store, taking turns (so a
    shared machine's changing load hits both alike); Feast's file store (minutes a call) in the first round
    only. Returns mloop's medians over the rounds; fills ``peers`` with Feast's, and every output is checked."""
    mine: list[dict[str, float]] = []
    theirs: dict[str, list[dict[str, Any]]] = {"file": [], "duckdb": []}
    python = None if skip_peer else peer_python("feast", FEAST)
    for number in range(rounds):
        print(f"  round {number + 1}/{rounds}: mloop training set (fresh process: cold, then warm)...", flush=True)
        child = subprocess.run([sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True,
                               check=True)
        mine.append(json.loads(child.stdout.strip().splitlines()[-1]))
        loads[f"mloop training, round {number + 1}"] = _load()
        _keep_worst(checks, "mloop", check(want, folder / "mloop-out.parquet", "mloop"))
        for offline in (("file", "duckdb") if number == 0 else ("duckdb",)) if python else ():
            print(f"  round {number + 1}/{rounds}: feast training set ({offline} offline store, fresh process)...",
                  flush=True)
            theirs[offline].append(run_peer(python, "feast_features.py", str(folder), offline, "3",
                                            str(TRAINING_TTL_HOURS)))
            loads[f"feast {offline} training, round {number + 1}"] = _load()
            _keep_worst(checks, f"feast {offline}", check(want, Path(str(theirs[offline][-1]["out"])), "feast"))
    keys = ("cold_s", "cold_cpu_s", "warm_s", "warm_cpu_s", "peak_mb")
    for offline, runs in theirs.items():
        if runs:
            peers[offline] = {k: statistics.median(r[k] for r in runs) for k in keys} | {"version": runs[0]["version"]}
    spread = {"mloop": mine, "feast duckdb": theirs["duckdb"]}
    print("  cold wall per round (s): " + "; ".join(f"{name} " + ", ".join(f"{r['cold_s']:.2f}" for r in runs)
                                                   for name, runs in spread.items() if runs), flush=True)
    return {k: statistics.median(r[k] for r in mine) for k in keys}


def _keep_worst(checks: dict[str, tuple[bool, str]], name: str, verdict: tuple[bool, str]) -> None:
    """Remember a round's verdict on ``name``'s output, unless an earlier round's was already wrong."""
    if name not in checks or checks[name][0]:
        checks[name] = verdict


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process, DuckDB's included
    return usage.ru_utime + usage.ru_stime


def _percentiles(fn, calls: int) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """(p50, p99) of wall time, and p99 of this thread's CPU time (immune to being descheduled)."""
    times, cpu = [], []
    for _ in range(calls):
        start, cpu_start = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - cpu_start)
        times.append(time.perf_counter() - start)
    times.sort()
    cpu.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)], cpu[int(len(cpu) * 0.99)]


def online_reference(folder: Path, as_of: pd.Timestamp) -> dict[str, Any]:
    """What a read of entities 0..99 must answer: the latest row of each entity materialized in [START, END],
    judged at ``as_of`` (withheld when newer than it, expired when older than the TTL)."""
    feats = pd.read_parquet(folder / "features.parquet")
    feats = feats[(feats["event_timestamp"] >= START) & (feats["event_timestamp"] <= END)]
    # the latest event time per entity, and among rows at that time the latest created (Feast's rule too)
    latest = feats.sort_values(["event_timestamp", "created"]).groupby("entity_id").tail(1).set_index("entity_id")
    status, values = [], {f"f{i}": [] for i in range(10)}
    for entity in ONLINE_IDS:
        row = latest.loc[entity] if entity in latest.index else None
        when = None if row is None else row["event_timestamp"]
        state = ("not_found" if when is None else "after_as_of" if when > as_of else
                 "expired" if when < as_of - TTL else "present")
        status.append(state)
        for name, column in values.items():
            column.append(float(row[name]) if state == "present" else None)
    return {"status": status, "values": values}


def _answer_problems(label: str, want: dict[str, Any], status: list[str] | None, values: dict[str, list]) -> list[str]:
    """The first difference between an online answer and the reference, named (an empty list when equal)."""
    for row, entity in enumerate(ONLINE_IDS):
        if status is not None and (len(status) <= row or status[row] != want["status"][row]):
            return [f"{label}: entity {entity} has status {status[row] if row < len(status) else 'absent'}, "
                    f"expected {want['status'][row]}"]
        for name, expected in want["values"].items():
            column = values.get(name, [])
            got = column[row] if row < len(column) else "absent"
            got = None if got is None or got != got else got  # NaN and None both mean missing
            if got != expected[row]:
                return [f"{label}: {name} of entity {entity} is {got}, expected {expected[row]}"]
    return []


def mloop_online(folder: Path, name: str, online_url: str | None) -> dict[str, Any]:
    home = folder / f"mloop-{name}"
    shutil.rmtree(home, ignore_errors=True)
    store = _store(home, online_url, project=f"bench{int(time.time())}", created="created")
    start, cpu_start = time.perf_counter(), _cpu()
    store.materialize(START.to_pydatetime(), END.to_pydatetime())
    result: dict[str, Any] = {"materialize_s": time.perf_counter() - start, "materialize_cpu_s": _cpu() - cpu_start}
    one, hundred = {"entity_id": [1]}, {"entity_id": ONLINE_IDS}
    as_of = END.to_pydatetime()

    def read100() -> dict[str, list[Any]]:  # what a caller uses: plain columns, conversion included
        return store.online(REFS, entities=hundred, as_of=as_of).to_dict()

    read100()
    gc.collect()
    result["online1_p50"], result["online1_p99"], result["online1_p99cpu"] = _percentiles(
        lambda: store.online(REFS, entities=one, as_of=as_of).to_dict(), 20_000)
    result["online100_p50"], result["online100_p99"], result["online100_p99cpu"] = _percentiles(read100, 5_000)
    problems = []
    for when in (END, MID):  # now-like, and a moment most entities were written after
        got = store.online(REFS, entities=hundred, as_of=when.to_pydatetime())
        problems += _answer_problems(f"mloop {name} as of {when:%Y-%m-%d %H:%M}", online_reference(folder, when),
                                     got.status["stats"], got.values)
    result["problems"] = problems
    if online_url and online_url.startswith("redis"):
        store.online_store.drop(f"{store.project}__stats__v1")  # type: ignore[attr-defined]
    store.close()
    return result


def report_online(sqlite: dict[str, Any], redis: dict[str, Any], feast: dict[str, Any],
                  load: tuple[float, float]) -> None:
    """p50 / p99 of wall time and p99 of CPU time, mloop (SQLite, Redis) and Feast (SQLite) side by side."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Online reads x 10 features, in-process, result converted to dict columns "
                        f"(ms; load average {load[0]:.1f} before, {load[1]:.1f} after, {os.cpu_count()} CPUs)")
    for column in ("entities", "measure", "mloop sqlite", "mloop redis", "feast sqlite", "feast / mloop sqlite",
                   "feast / mloop redis"):
        table.add_column(column, justify="right")
    for n in (1, 100):
        for q, label in (("p50", "p50"), ("p99", "p99"), ("p99cpu", "p99 of CPU time")):
            key = f"online{n}_{q}"
            table.add_row(str(n), label, _ms(sqlite.get(key)), _ms(redis.get(key)), _ms(feast.get(key)),
                          ratio(sqlite.get(key), feast.get(key), False), ratio(redis.get(key), feast.get(key), False))
    Console(width=200).print(table)


def check(want: pd.DataFrame, out_file: Path, label: str) -> tuple[bool, str]:
    """(right, verdict): every row and column of the output against the reference. Rows a peer leaves
    out are reported (the values it returns must still be right); mloop must return every row."""
    got = pd.read_parquet(out_file)
    if label != "mloop":  # Feast returns rows in its own order: compare both sorted the same way
        order = ["entity_id", "event_timestamp", *[f"f{i}" for i in range(10)]]
        got = got.sort_values(order).reset_index(drop=True)
        want = want.sort_values(order).reset_index(drop=True)
    dropped = ""
    if len(got) != len(want) and label != "mloop" and len(got) == int(want["f0"].notna().sum()):
        # Feast's file store leaves out the entity rows with nothing inside the TTL: check the rest
        dropped = f"drops the {len(want) - len(got):,} rows without features; "
        want = want[want["f0"].notna()].reset_index(drop=True)
    if len(got) != len(want):
        return False, f"{len(want):,} rows expected, {len(got):,} returned"
    cols = [f"f{i}" for i in range(10)]
    same_values = np.array_equal(got[cols].to_numpy(float), want[cols].to_numpy(float), equal_nan=True)
    same_keys = (got["entity_id"].to_numpy() == want["entity_id"].to_numpy()).all()
    same_times = (_ns(got["event_timestamp"]) == _ns(want["event_timestamp"])).all()
    wrong_rows = int((~np.isclose(got[cols].to_numpy(float), want[cols].to_numpy(float), rtol=0, atol=0,
                                  equal_nan=True)).any(axis=1).sum())
    nulls = int(want["f0"].isna().sum())
    if same_values and same_keys and same_times and dropped:
        return True, f"{dropped}the {len(want):,} it returns are all equal"
    if same_values and same_keys and same_times:
        return True, f"all {len(want):,} rows equal ({nulls:,} = {nulls / len(want):.1%} without features, kept)"
    return False, (f"DIFFERENT: {wrong_rows:,} of {len(want):,} rows wrong (keys equal: {same_keys}, "
                   f"times equal: {same_times})")


def _ns(times: pd.Series) -> np.ndarray:
    return times.dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--rounds", type=int, default=5,
                        help="Training-set rounds: a fresh process each for mloop and Feast's DuckDB store, in turn.")
    parser.add_argument("--only", choices=["all", "training", "online"], default="all",
                        help="Run only the training-set or only the materialize/online workloads.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = WORK / "features"
    if args.child:
        training_child(Path(args.child))
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"generating {args.rows:,} feature rows, {args.entity_rows:,} entity rows...", flush=True)
    generate(folder, args.rows, args.entities, args.entity_rows)
    ours: dict[str, float] = {}
    checks: dict[str, tuple[bool, str]] = {}
    loads: dict[str, str] = {}
    redis: dict[str, float] = {}
    training, online = args.only in ("all", "training"), args.only in ("all", "online")
    want = reference(folder) if training else None
    peers: dict[str, dict[str, float]] = {}
    if training:
        ours.update(training_rounds(folder, want, args.rounds, args.skip_peer, peers, checks, loads))
    problems: list[str] = []
    feast_online = ""
    load_before = os.getloadavg()[0]
    if online:
        print("  mloop materialize + online (sqlite)...", flush=True)
        ours.update(mloop_online(folder, "sqlite", None))
        problems += ours.pop("problems")
        try:
            print("  mloop materialize + online (redis)...", flush=True)
            redis = mloop_online(folder, "redis", REDIS)
            problems += redis.pop("problems")
        except Exception as exc:  # Redis not running
            print(f"  redis skipped: {exc}")
    if not args.skip_peer:
        python = peer_python("feast", FEAST)
        if online:
            print("  feast materialize + online (sqlite)...", flush=True)
            peers["online"] = run_peer(python, "feast_features.py", str(folder), "file", "--online")
            feast_wrong = _answer_problems("feast", online_reference(folder, END), None,
                                           peers["online"].pop("online100_values"))
            feast_online = "; ".join(feast_wrong) or "exactly equal"
    report(ours, redis, peers, checks, loads)
    if online:
        report_online(ours, redis, peers.get("online", {}), (load_before, os.getloadavg()[0]))
        print("  online answers (100 entities as of the end, and as of a moment before most rows) vs the source "
              f"data: {'; '.join(problems) if problems else 'exactly equal, mloop sqlite and redis'}")
        if feast_online:
            print(f"  feast online answer vs the source data: {feast_online}")
    if problems or not checks.get("mloop", (True, ""))[0]:
        sys.exit(1)  # a peer's wrong answer is printed as a finding; ours fails the run


def report(ours: dict[str, float], redis: dict[str, float], peers: dict[str, dict[str, float]],
           checks: dict[str, tuple[bool, str]], loads: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    file, duck, online = peers.get("file", {}), peers.get("duckdb", {}), peers.get("online", {})
    table = Table(title="Feature store: mloop vs Feast (medians; p50/p99 over repeated calls)")
    for column in ("workload", "mloop", "mloop redis", "feast file", "feast duckdb", "ratio vs file",
                   "ratio vs duckdb"):
        table.add_column(column, justify="right")
    for key, label in (("cold_s", "training set 100k x 10, cold: 1st call (s)"),
                       ("warm_s", "training set 100k x 10, warm: median (s)"),
                       ("cold_cpu_s", "training set CPU time, cold (s)"),
                       ("warm_cpu_s", "training set CPU time, warm (s)")):
        table.add_row(label, fmt(ours.get(key), "s"), "-", fmt(file.get(key), "s"), fmt(duck.get(key), "s"),
                      ratio(ours.get(key), file.get(key), False), ratio(ours.get(key), duck.get(key), False))
    table.add_row("training peak memory (MB)", fmt(ours.get("peak_mb"), "MB"), "-", fmt(file.get("peak_mb"), "MB"),
                  fmt(duck.get("peak_mb"), "MB"), ratio(ours.get("peak_mb"), file.get("peak_mb"), False),
                  ratio(ours.get("peak_mb"), duck.get("peak_mb"), False))
    table.add_row("materialize 30 days -> online", fmt(ours.get("materialize_s"), "s"),
                  fmt(redis.get("materialize_s"), "s"), fmt(online.get("materialize_s"), "s"), "-",
                  ratio(ours.get("materialize_s"), online.get("materialize_s"), False), "-")
    table.add_row("materialize CPU time (s)", fmt(ours.get("materialize_cpu_s"), "s"),
                  fmt(redis.get("materialize_cpu_s"), "s"), fmt(online.get("materialize_cpu_s"), "s"), "-",
                  ratio(ours.get("materialize_cpu_s"), online.get("materialize_cpu_s"), False), "-")
    Console(width=200).print(table)
    for name, (_, verdict) in checks.items():
        print(f"  training set vs the pandas reference, {name}: {verdict}")
    for name, load in loads.items():
        print(f"  load average (1/5/15 min) after {name}: {load} on {os.cpu_count()} CPUs")
    print(f"  feast version {file.get('version', '-')}")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3f}"


if __name__ == "__main__":
    main()
