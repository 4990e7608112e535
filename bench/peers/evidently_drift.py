"""Evidently's side of bench/drift.py: the DataDriftPreset on the same Parquet files; prints JSON last.

    python evidently_drift.py REF.parquet CUR.parquet [HTML_OUT [WARM_REPEAT]]

Cold: the first report in this fresh process (the library imported, the data read, nothing else run yet).
Warm: the median of WARM_REPEAT more reports on the same data, in the same process.
"""

import json
import resource
import statistics
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main() -> None:
    ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
    html_out = sys.argv[3] if len(sys.argv) > 3 else ""
    numeric = [c for c in ref.columns if c.startswith("num")]
    categorical = [c for c in ref.columns if c.startswith("cat")]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    warm_repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 0

    def report():  # the verdicts, per column, as a user reads them
        snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                                   Dataset.from_pandas(ref, data_definition=definition))
        return snapshot, snapshot.dict()

    start = time.perf_counter()
    snapshot, result = report()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    warm = []
    for _ in range(warm_repeat):
        start = time.perf_counter()
        report()
        warm.append(time.perf_counter() - start)
    flagged = []
    for metric in result.get("metrics", []):
        config, value = metric.get("config", {}), metric.get("value")
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        value, threshold = float(value), float(config["threshold"])
        is_test = "p_value" in str(config.get("method", ""))
        if (value < threshold) if is_test else (value >= threshold):
            flagged.append(config["column"])
    out = {"drift_s": seconds, "warm_s": statistics.median(warm) if warm else None, "peak_mb": peak_mb,
           "flagged": sorted(flagged)}
    if html_out:
        snapshot.save_html(html_out)
        with open(html_out, "rb") as f:
            out["html_100k_bytes"] = len(f.read())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
