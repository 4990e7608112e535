"""Evidently's side of bench/drift.py: the DataDriftPreset on the same Parquet files; prints JSON last.

    python evidently_drift.py REF.parquet CUR.parquet [HTML_OUT]
"""

import json
import resource
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
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                               Dataset.from_pandas(ref, data_definition=definition))
    result = snapshot.dict()
    seconds = time.perf_counter() - start
    flagged = []
    for metric in result.get("metrics", []):
        config, value = metric.get("config", {}), metric.get("value")
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        value, threshold = float(value), float(config["threshold"])
        is_test = "p_value" in str(config.get("method", ""))
        if (value < threshold) if is_test else (value >= threshold):
            flagged.append(config["column"])
    out = {"drift_s": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "flagged": sorted(flagged)}
    if html_out:
        snapshot.save_html(html_out)
        with open(html_out, "rb") as f:
            out["html_100k_bytes"] = len(f.read())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
