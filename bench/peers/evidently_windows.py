"""Evidently's side of bench/monitoring.py: its DataDriftPreset on each window against the training data.

    python evidently_windows.py TRAIN.parquet WINDOW.parquet [WINDOW.parquet ...]

Prints JSON last: the median seconds per window, the windows run, peak memory, and the drifted columns per window.
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
    reference = pd.read_parquet(sys.argv[1])
    numeric = [c for c in reference.columns if c.startswith("num")]
    categorical = [c for c in reference.columns if c.startswith("cat")]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    ref = Dataset.from_pandas(reference, data_definition=definition)
    times, flagged = [], []
    for path in sys.argv[2:]:
        window = pd.read_parquet(path)
        start = time.perf_counter()
        result = Report([DataDriftPreset()]).run(Dataset.from_pandas(window, data_definition=definition), ref).dict()
        times.append(time.perf_counter() - start)
        found = []
        for metric in result.get("metrics", []):
            config, value = metric.get("config", {}), metric.get("value")
            if str(config.get("type", "")).endswith("ValueDrift"):
                is_test = "p_value" in str(config.get("method", ""))
                threshold = float(config["threshold"])
                if (float(value) < threshold) if is_test else (float(value) >= threshold):
                    found.append(config["column"])
        flagged.append(found)
    print(json.dumps({"per_window": statistics.median(times), "windows": len(times),
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "flagged": flagged}))


if __name__ == "__main__":
    main()
