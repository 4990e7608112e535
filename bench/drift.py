"""Drift and validation benchmark: mloop against Evidently's data drift preset on identical data.

    python bench/drift.py [--skip-peer] [--skip-1m] [--warm 3]

Data: 15 numeric and 5 categorical columns; exactly 4 shifted (num_00 mean +0.3 sd, num_06 exponential scale
x1.2, num_09 lognormal scale x1.25, cat_0 category shares). Written once to bench/.work/drift/*.parquet and
read by both sides, so both see the same rows. Workloads: drift 100k vs 100k (and which columns each
flags), drift 1M vs 1M (time, peak memory of a fresh process), validation of 1M rows x 20 columns,
HTML report size, and a one-row validation (the serving path).

Drift is timed alike on both sides, in a fresh process each (library imported, data read): cold is the first
call, what a script or a scheduled job pays; warm is the median of ``--warm`` further calls in that process,
what a long-lived service pays. Exits 1 when mloop flags other columns than the shifted ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, LoadWatch, check, finish, fmt, median_time, peer_python, ratio, run_peer  # noqa: E402

SHIFTED = ["num_00", "num_06", "num_09", "cat_0"]
CATS = [["a", "b", "c", "d"], ["x", "y", "z"], ["red", "green", "blue", "black", "white"], ["p", "q"],
        [f"k{i:02d}" for i in range(12)]]
EVIDENTLY = ["evidently==0.7.23", "pandas<3", "pyarrow", "psutil"]


def make(n: int, seed: int, shifted: bool) -> pd.DataFrame:
    """One side of the benchmark data; ``shifted`` applies the 4 shifts (every other column is identical)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    draw = [lambda i: rng.normal(10 + i, 2, n), lambda i: rng.exponential(3, n), lambda i: rng.uniform(0, 100, n),
            lambda i: rng.gamma(2.0, 2.0, n), lambda i: rng.lognormal(0, 0.5, n)]
    for i in range(15):
        cols[f"num_{i:02d}"] = draw[i % 5](i)
    for j, values in enumerate(CATS):
        p = np.linspace(2, 1, len(values))
        p = np.array([0.2, 0.3, 0.3, 0.2]) if shifted and j == 0 else p / p.sum()
        cols[f"cat_{j}"] = np.asarray(values, dtype=object)[rng.choice(len(values), n, p=p)]
    if shifted:
        cols["num_00"] = cols["num_00"] + 0.6  # +0.3 standard deviations
        cols["num_06"] = cols["num_06"] * 1.2  # exponential scale 3 -> 3.6
        cols["num_09"] = cols["num_09"] * 1.25  # lognormal scale
    return pd.DataFrame(cols)


def files(n: int) -> tuple[Path, Path]:
    folder = WORK / "drift"
    folder.mkdir(parents=True, exist_ok=True)
    ref, cur = folder / f"ref_{n}.parquet", folder / f"cur_{n}.parquet"
    if not ref.exists() or not cur.exists():
        make(n, 1, False).to_parquet(ref)
        make(n, 2, True).to_parquet(cur)
    return ref, cur


def plain_tests(ref: pd.DataFrame, cur: pd.DataFrame) -> list[str]:
    """What a per-column KS / chi-square at p < 0.05 flags on the same data (the naive baseline)."""
    from scipy import stats

    flagged = []
    for c in ref.columns:
        if c.startswith("num"):
            p = stats.ks_2samp(ref[c], cur[c]).pvalue
        else:
            table = pd.concat([ref[c].value_counts(), cur[c].value_counts()], axis=1).fillna(0).to_numpy().T
            p = stats.chi2_contingency(table, correction=False).pvalue
        if p < 0.05:
            flagged.append(c)
    return flagged


def ours_in_fresh_process(n: int, warm: int) -> dict[str, Any]:
    """Drift on n vs n rows in a process of its own (peak RSS is per process): the first call (cold), then the
    median of ``warm`` more calls (warm); peak memory is taken after the cold call, as on the peer's side."""
    ref, cur = files(n)
    root = str(Path(__file__).resolve().parent.parent)
    code = (f"import sys, time, json, resource, statistics; sys.path.insert(0, {root!r})\n"
            "import pandas as pd\nfrom mloop.validation import drift\n"
            f"ref = pd.read_parquet({str(ref)!r}); cur = pd.read_parquet({str(cur)!r})\n"
            "t = time.perf_counter(); r = drift(ref, cur); s = time.perf_counter() - t\n"
            "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; warm = []\n"
            f"for _ in range({warm}):\n"
            "    t = time.perf_counter(); drift(ref, cur); warm.append(time.perf_counter() - t)\n"
            "print(json.dumps({'cold_s': s, 'warm_s': statistics.median(warm) if warm else None, 'peak_mb': peak,"
            " 'drifted': r.drifted_columns}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"mloop drift failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-1m", action="store_true")
    parser.add_argument("--warm", type=int, default=3, help="warm calls after the cold one (median reported)")
    args = parser.parse_args()
    watch = LoadWatch()
    from mloop.validation import drift, infer_schema, profile, validate

    ref_path, cur_path = files(100_000)
    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    small = ours_in_fresh_process(100_000, args.warm)
    ours: dict[str, Any] = {"drift_100k_cold_s": small["cold_s"], "drift_100k_warm_s": small["warm_s"],
                            "flagged": small["drifted"], "plain_flagged": plain_tests(ref, cur)}
    result = drift(ref, cur)
    ref_profile = profile(ref)
    ours["profile_verdicts_equal"] = (drift(ref_profile, profile(cur, reference=ref_profile)).drifted_columns
                                      == drift(ref_profile, cur).drifted_columns == result.drifted_columns)
    ours["profile_json_bytes"] = len(ref_profile.to_json())
    html_dir = WORK / "drift"
    ours["html_100k_bytes"] = len(result.to_html(html_dir / "report_100k.html").encode())
    if not args.skip_1m:
        big = ours_in_fresh_process(1_000_000, args.warm)
        ours["drift_1m_cold_s"], ours["drift_1m_warm_s"] = big["cold_s"], big["warm_s"]
        ours["drift_1m_peak_mb"], ours["flagged_1m"] = big["peak_mb"], big["drifted"]
        ref1, cur1 = pd.read_parquet(files(1_000_000)[0]), pd.read_parquet(files(1_000_000)[1])
        ours["html_1m_bytes"] = len(drift(ref1, cur1).to_html(html_dir / "report_1m.html").encode())
        schema = infer_schema(ref1)
        check(validate(ref1, schema).passed, "the 1M reference fails the schema inferred from it")
        ours["validate_1m_s"] = median_time(lambda: validate(cur1, schema), repeat=3)
        del ref1, cur1
    schema = infer_schema(ref)
    one = ref.head(1)
    check(validate(one, schema).passed, "a reference row fails the schema inferred from the reference")
    start = time.perf_counter()
    for _ in range(2000):
        validate(one, schema)
    ours["validate_1row_ms"] = (time.perf_counter() - start) / 2000 * 1000

    peer: dict[str, Any] = {}
    if not args.skip_peer:
        python = peer_python("evidently", EVIDENTLY)
        print("running Evidently (100k)...", flush=True)
        found = run_peer(python, "evidently_drift.py", str(ref_path), str(cur_path),
                         str(html_dir / "evidently_100k.html"), str(args.warm))
        peer = {"drift_100k_cold_s": found["drift_s"], "drift_100k_warm_s": found["warm_s"],
                "flagged": found["flagged"], "html_100k_bytes": found.get("html_100k_bytes")}
        if not args.skip_1m:
            print("running Evidently (1M)...", flush=True)
            big = run_peer(python, "evidently_drift.py", *map(str, files(1_000_000)), "", str(args.warm),
                           timeout=3600)
            peer["drift_1m_cold_s"], peer["drift_1m_warm_s"] = big["drift_s"], big["warm_s"]
            peer["drift_1m_peak_mb"] = big["peak_mb"]

    print(f"\nshifted columns: {SHIFTED}")
    print(f"mloop flags (100k): {ours['flagged']}   (1M: {ours.get('flagged_1m', '-')})")
    print(f"plain KS / chi-square p<0.05 flags: {ours['plain_flagged']}")
    print(f"profile-vs-profile and profile-vs-data verdicts equal raw-data verdicts: {ours['profile_verdicts_equal']} "
          f"(reference profile: {ours['profile_json_bytes'] / 1e3:.0f} kB of JSON)")
    if peer:
        print(f"Evidently flags (100k): {peer.get('flagged')}")
    print(f"\n{'workload':<40}{'mloop':>14}{'Evidently':>14}{'ratio':>10}   target")
    rows = [("drift 100k vs 100k, cold (1st call)", "drift_100k_cold_s", "s", "20x faster"),
            ("drift 100k vs 100k, warm (median)", "drift_100k_warm_s", "s", "20x faster"),
            ("drift 1M vs 1M, cold (1st call)", "drift_1m_cold_s", "s", "< 4 s"),
            ("drift 1M vs 1M, warm (median)", "drift_1m_warm_s", "s", "< 4 s"),
            ("drift 1M peak memory", "drift_1m_peak_mb", "MB", "< 2048 MB"),
            ("HTML report, 1M rows", "html_1m_bytes", "B", "< 2 MB"),
            ("HTML report, 100k rows", "html_100k_bytes", "B", ""),
            ("validate 1M x 20", "validate_1m_s", "s", "< 1 s"),
            ("validate 1 row (ms)", "validate_1row_ms", "ms", "<< 1 ms")]
    for label, key, unit, target in rows:
        a, b = ours.get(key), peer.get(key)
        print(f"{label:<40}{_show(a, unit):>14}{_show(b, unit):>14}"
              f"{ratio(a, b, False) if unit != 'ms' else '-':>10}   {target}")
    print(f"(cold and warm: {args.warm} warm calls after the cold one, each side in a fresh process of its own; "
          "ratio = how many times faster or smaller mloop is)")
    print(json.dumps({"mloop": ours, "evidently": peer}, default=str))
    check(sorted(ours["flagged"]) == sorted(SHIFTED), f"mloop flags {ours['flagged']} at 100k, not {SHIFTED}")
    if "flagged_1m" in ours:
        check(sorted(ours["flagged_1m"]) == sorted(SHIFTED), f"mloop flags {ours['flagged_1m']} at 1M, not {SHIFTED}")
    check(ours["profile_verdicts_equal"], "drift from profiles differs from drift on the raw data")
    finish(watch)


def _show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "B":
        return f"{value / 1e6:.2f} MB"
    return fmt(value, unit)


if __name__ == "__main__":
    main()
