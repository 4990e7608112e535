"""Monitoring benchmark: a day of one model's prediction log summarized into 5-minute windows, and a month of
windows read back for the dashboard; Evidently's data drift preset on the same windows beside it.

    python bench/monitoring.py [--rows 10000000] [--flush-seconds 1] [--no-compact] [--evidently-windows 12]
                               [--skip-peer]

Data: one registered model with 20 inputs (15 numeric, 5 categorical) and its training profile; a day of
``--rows`` predictions in the serving log's own layout: one Parquet file per ``--flush-seconds`` of traffic
(``mloop serve`` flushes every second by default: a day is 86,400 files), named by the time it was written,
uniformly over the day; from noon one input (num_00) drifts by half a standard deviation. The serving log joins
each hour's files into one once the hour has closed; the bench does the same for the day's hours (timed apart, in
a fresh process: on a server that work is spread over the day, an hour at a time) unless ``--no-compact``.
mloop runs ``run_monitor`` once in a fresh process (5-minute windows: 288), its time and peak memory printed,
and must flag num_00 in every afternoon window and nothing else in most windows, and store for a few windows
exactly what summarizing each one's rows alone gives (exit 1 otherwise). The month:
30 days of 5-minute windows of the same figures stored, then the dashboard's read (traffic, latency, every
input's drift, rolled up by the hour as the dashboard asks for a month) timed. Evidently
(bench/.venv-evidently) runs its DataDriftPreset on the first ``--evidently-windows`` windows of the same log
against the same training data; both are compared per window.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, LoadWatch, check, finish, fmt, peak_mb, peer_python, ratio, run_peer  # noqa: E402

NUMERIC = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
LEVELS = [["a", "b", "c", "d"], ["x", "y", "z"], ["red", "green", "blue", "black"], ["p", "q"],
          [f"k{i:02d}" for i in range(12)]]
DAY = pd.Timestamp("2026-11-02", tz="UTC")
FILE_ROWS = 50_000
EVIDENTLY = ["evidently==0.7.23", "pandas<3", "pyarrow", "psutil"]


def inputs(n: int, rng: np.random.Generator, shift: np.ndarray | None = None) -> dict[str, np.ndarray]:
    data = {name: rng.normal(i, 1 + i / 10, n) for i, name in enumerate(NUMERIC)}
    if shift is not None:
        data["num_00"] = data["num_00"] + shift
    for name, levels in zip(CATEGORICAL, LEVELS, strict=True):
        data[name] = rng.choice(levels, n)
    return data


def setup(home: Path, rows: int, flush_seconds: float) -> pd.DataFrame:
    """The model with its training profile, and a day of its log; returns the training frame."""
    from sklearn.linear_model import Ridge

    from mloop._sdk import ActiveRun
    from mloop.config import Settings
    from mloop.registry import registry_for
    from mloop.tracking import TrackingClient
    from mloop.validation.attach import attach_to_model_version

    settings = Settings.load(home=str(home))
    rng = np.random.default_rng(0)
    train = pd.DataFrame(inputs(50_000, rng))
    model = Ridge().fit(train[NUMERIC], train["num_01"])
    with TrackingClient(settings).start_run("bench", run_class=ActiveRun) as run:
        mv = run.log_model(model, name="fare")
    attach_to_model_version("fare", mv.version, data=train, registry=registry_for(settings))
    log = Path(settings.artifact_root) / "predictions" / "fare"
    day_ms = int(DAY.timestamp() * 1000)
    times = np.sort(rng.integers(day_ms, day_ms + 86_400_000, rows))
    span = int(flush_seconds * 1000)
    edges = np.searchsorted(times, np.arange(day_ms, day_ms + 86_400_000 + span, span))
    data = inputs(rows, rng, np.where(times >= day_ms + 43_200_000, 0.5, 0.0))
    outputs = np.round(rng.normal(5, 2, rows), 3).astype(str)
    latency = rng.gamma(2.0, 2.0, rows)
    for part, (begin, end) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        if begin == end:
            continue
        t, n = times[begin:end], end - begin
        struct = pa.StructArray.from_arrays([pa.array(data[c][begin:end]) for c in NUMERIC + CATEGORICAL],
                                            names=NUMERIC + CATEGORICAL)
        table = pa.table({"id": pa.array([f"{part}-{i}-0" for i in range(n)]),
                          "time": pa.array(t).cast(pa.timestamp("ms", tz="UTC")), "model": ["fare"] * n,
                          "version": [str(mv.version)] * n, "role": ["primary"] * n, "inputs": struct,
                          "output": pa.array(outputs[begin:end]), "latency_ms": pa.array(latency[begin:end]),
                          "proba": pa.nulls(n, pa.string())})
        written = pd.Timestamp(int(t[-1]) + 200, unit="ms", tz="UTC")
        # filed under the day it was written, as the serving log does: the day's last second lands after midnight
        folder = log / written.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"{written.strftime('%H%M%S%f')}-1-{part:08x}.parquet", compression="zstd")
    return train


def monitor_once(home: str) -> None:
    """In a fresh process: the day's windows, then the month's read; prints JSON last."""
    from mloop.config import Settings
    from mloop.monitoring import create_monitor, run_monitor, series

    settings = Settings.load(home=home)
    create_monitor("fare-5m", "fare", window="5m", start=DAY, settings=settings)
    start, cpu = time.perf_counter(), time.process_time()
    report = run_monitor("fare-5m", now=DAY + pd.Timedelta(days=1, minutes=5), settings=settings)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    drifted = series("fare-5m", "drifted", settings=settings)
    afternoon = drifted["start"] >= DAY + pd.Timedelta(hours=12)
    by_column = drifted.groupby([afternoon, "column"])["value"].mean().unstack(0).fillna(0).to_dict()
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "windows": report.windows, "rows": report.rows,
                      "peak_mb": peak_mb(), "unequal_alone": unequal_alone(settings),
                      "drifted_share": {str(k): v for k, v in by_column.items()}}))


def unequal_alone(settings) -> list[str]:  # type: ignore[no-untyped-def]
    """The stored figures of a few windows that differ from summarizing each window's rows alone (none)."""
    from mloop.monitoring import _log, series, window_profile
    from mloop.monitoring._runner import training_reference
    from mloop.monitoring.windows import summarize
    from mloop.store.blob import open_blob_store

    blobs = open_blob_store(settings.artifact_root)
    reference, schema = training_reference("fare", "1", settings)
    stored = series("fare-5m", settings=settings)
    wrong = []
    for w in (0, 144, 287):  # the first window (no previous one), the one the drift starts at, the last
        start = DAY + pd.Timedelta(minutes=5 * w)
        ms = int(start.timestamp() * 1000)
        rows = _log.read_rows(blobs, _log.files_since(blobs, "fare", ms, ms + 480_000), ms, ms + 300_000)
        previous = window_profile("fare-5m", start - pd.Timedelta(minutes=5), "1", settings=settings) if w else None
        alone = summarize(rows.assign(label=None), task="regression", reference=reference, schema=schema,
                          previous=previous)
        mine = stored[stored["start"] == start]
        keys = zip(mine["metric"], mine["column"], mine["slice"], strict=True)
        got = dict(zip(keys, mine["value"], strict=True))
        for p in alone.points:
            value = got.get((p.metric, p.column, p.slice))
            if value is None or not (value == p.value or value != value and p.value != p.value):
                wrong.append(f"window {w}: {p.metric} {p.column} {p.slice}: {value} stored, {p.value} alone")
    return wrong


def compact_once(home: str) -> None:
    """In a fresh process: the day's closed hours compacted as the serving log does each; prints JSON last."""
    from mloop.config import Settings
    from mloop.serving.predlog import compact_predictions
    from mloop.store.blob import open_blob_store

    settings = Settings.load(home=home)
    start, cpu = time.perf_counter(), time.process_time()
    later = (DAY + pd.Timedelta(days=1, hours=3)).to_pydatetime()
    done = compact_predictions(settings, now=later)
    compact_predictions(settings, now=later)  # the joined files go at the next run, as the serving log's an hour on
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    files = len(open_blob_store(settings.artifact_root).list("predictions/fare/"))
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "compacted": done["compacted"], "files": files,
                      "peak_mb": peak_mb()}))


def month_read(home: str) -> None:
    """A month of 5-minute windows stored, then the dashboard's read timed (median of 5); prints JSON last."""
    from sqlalchemy import insert, select

    from mloop.config import Settings
    from mloop.monitoring._tables import monitor_series
    from mloop.monitoring.rollup import refresh_rollups, rolled_up_series
    from mloop.store.sql import open_database

    settings = Settings.load(home=home)
    db = open_database(settings.db_url)
    with db.read() as conn:
        day = [dict(r._mapping) for r in conn.execute(select(monitor_series).where(
            monitor_series.c.monitor == "fare-5m"))]
    day_ms = int(DAY.timestamp() * 1000)
    with db.write() as conn:
        for d in range(1, 30):
            conn.execute(insert(monitor_series), [{**r, "start": r["start"] - d * 86_400_000} for r in day])
    refresh_rollups("fare-5m", settings=settings)  # what run_monitor does for the windows it writes
    wanted = ["rows", "latency_p50", "latency_p95", "latency_p99", "drift_effect"]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        found = rolled_up_series("fare-5m", "1h", wanted,
                                 start=pd.Timestamp(day_ms - 29 * 86_400_000, unit="ms", tz="UTC"), settings=settings)
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": float(np.median(times)), "points": len(found), "stored": len(day) * 30}))


def evidently_windows(home: Path, train: pd.DataFrame, windows: int) -> tuple[Path, list[Path]]:
    """The training frame and the first ``windows`` 5-minute windows of the log, as Parquet for Evidently."""
    from mloop.config import Settings
    from mloop.monitoring import _log
    from mloop.store.blob import open_blob_store

    settings = Settings.load(home=str(home))
    blobs = open_blob_store(settings.artifact_root)
    day_ms = int(DAY.timestamp() * 1000)
    out = WORK / "monitoring"
    out.mkdir(parents=True, exist_ok=True)
    reference = out / "train.parquet"
    train.to_parquet(reference)
    paths = []
    for w in range(windows):
        start, end = day_ms + w * 300_000, day_ms + (w + 1) * 300_000
        rows = _log.read_rows(blobs, _log.files_since(blobs, "fare", start, end + 60_000), start, end)
        path = out / f"window-{w:03d}.parquet"
        rows[NUMERIC + CATEGORICAL].to_parquet(path)
        paths.append(path)
    return reference, paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--flush-seconds", type=float, default=1.0)
    parser.add_argument("--no-compact", action="store_true", help="leave the log as it was written")
    parser.add_argument("--evidently-windows", type=int, default=12)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--step", choices=["monitor", "month", "compact"], help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        {"monitor": monitor_once, "month": month_read, "compact": compact_once}[args.step](args.home)
        return
    watch = LoadWatch()
    home = Path(tempfile.mkdtemp(prefix="mloop-bench-monitoring-"))
    start = time.perf_counter()
    train = setup(home, args.rows, args.flush_seconds)
    print(f"wrote a day of {args.rows:,} predictions in {time.perf_counter() - start:.1f} s", flush=True)
    compacted = None if args.no_compact else _step("compact", home)
    if compacted:
        check(compacted["files"] <= 26, f"{compacted['files']} log files left after compacting the day's hours")
        print(f"compacted {compacted['compacted']:,} files into {compacted['files']} in {compacted['seconds']:.1f} s "
              f"({compacted['cpu_seconds']:.1f} s CPU, {compacted['cpu_seconds'] / 24:.2f} s per hour)", flush=True)
    ours = _step("monitor", home)
    month = _step("month", home)
    afternoon = ours["drifted_share"].get("True", {})
    morning = ours["drifted_share"].get("False", {})
    check(ours["windows"] == 288 and ours["rows"] == args.rows, f"windows/rows: {ours['windows']}, {ours['rows']}")
    check(afternoon.get("num_00") == 1.0, f"num_00 flagged in {afternoon.get('num_00')} of afternoon windows")
    others = max(v for k, v in {**morning, **afternoon}.items() if k != "num_00")
    check(others <= 0.05 and morning.get("num_00", 0) <= 0.05, f"false alarms: up to {others:.0%} of windows")
    check(not ours["unequal_alone"], f"windows unlike their rows summarized alone: {ours['unequal_alone'][:5]}")
    theirs = None
    if not args.skip_peer:
        reference, windows = evidently_windows(home, train, args.evidently_windows)
        python = peer_python("evidently", EVIDENTLY)
        theirs = run_peer(python, "evidently_windows.py", str(reference), *map(str, windows))
    per_window = ours["seconds"] / max(ours["windows"], 1)
    print(f"\n{'workload':<52}{'mloop':>14}{'Evidently':>14}{'ratio':>10}")
    print(f"{f'a day, {args.rows:,} rows -> 288 five-minute windows':<52}{fmt(ours['seconds'], 's'):>14}"
          f"{'-':>14}{'-':>10}")
    print(f"{'  CPU time of that (all threads; the load cannot inflate it)':<52}{fmt(ours['cpu_seconds'], 's'):>14}")
    print(f"{'  per window (drift of 20 inputs + all figures)':<52}{fmt(per_window, 's'):>14}"
          f"{fmt(theirs and theirs['per_window'], 's'):>14}"
          f"{ratio(per_window, theirs and theirs['per_window'], False):>10}")
    print(f"{'  peak memory':<52}{fmt(ours['peak_mb'], 'MB'):>14}{fmt(theirs and theirs['peak_mb'], 'MB'):>14}")
    if compacted:
        print(f"{'  compacting the hours first (serving does it hourly)':<52}{fmt(compacted['cpu_seconds'], 's'):>14}")
    read = f"a month of windows read ({month['points']:,} points)"
    print(f"{read:<52}{fmt(month['seconds'], 's'):>14}")
    print(f"goals: day < 30 s ({'met' if ours['seconds'] < 30 else 'NOT met'}), memory < 2 GB "
          f"({'met' if ours['peak_mb'] < 2048 else 'NOT met'}), month read < 200 ms "
          f"({'met' if month['seconds'] < 0.2 else 'NOT met'})")
    finish(watch)


def _step(step: str, home: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--step", step, "--home", str(home)], capture_output=True,
                         text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
