"""System metrics (CPU, memory, and GPU when NVML is present) sampled into a run at an interval."""

from __future__ import annotations

import threading
from typing import Any

import psutil


class SystemMetricsSampler:
    """Logs ``system/*`` metrics on ``run`` every ``interval`` seconds until stopped."""

    def __init__(self, run: Any, interval: float) -> None:
        self.run = run
        self.interval = interval
        self._stop = threading.Event()
        self._process = psutil.Process()
        self._gpu = _nvml_handles()
        psutil.cpu_percent(None)  # the first reading primes the counter
        self._thread = threading.Thread(target=self._loop, name="mloop-sysmetrics", daemon=True)
        self._thread.start()

    def sample(self) -> dict[str, float]:
        memory = psutil.virtual_memory()
        values = {"system/cpu_percent": psutil.cpu_percent(None),
                  "system/memory_percent": memory.percent,
                  "system/memory_used_mb": (memory.total - memory.available) / 2**20,
                  "system/process_rss_mb": self._process.memory_info().rss / 2**20}
        for i, handle in enumerate(self._gpu):
            import pynvml

            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            values[f"system/gpu{i}_percent"] = float(util.gpu)
            values[f"system/gpu{i}_memory_mb"] = mem.used / 2**20
        return values

    def _loop(self) -> None:
        step = 0
        while not self._stop.wait(self.interval):
            self.run.log_metrics(self.sample(), step=step)
            step += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.interval + 1)


def _nvml_handles() -> list[Any]:
    try:
        import pynvml

        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # no NVML library or no GPU: CPU and memory only
        return []
