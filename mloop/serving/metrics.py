"""Prometheus metrics kept as plain counters (no client library on the request path).

>>> m = Metrics()
>>> m.observe("eta", "3", "/predict", 200, 0.004, 1)
>>> 'mloop_requests_total{model="eta",version="3",route="/predict",status="200"} 1' in m.render()
True
"""

from __future__ import annotations

import bisect
from collections import defaultdict

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _Histogram:
    __slots__ = ("buckets", "counts", "count", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.count += 1
        self.sum += value

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{{labels},le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {self.sum}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class Metrics:
    """Requests, errors, latency, rows per request, batch sizes, cache, fallbacks, shadow and model versions."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], _Histogram] = {}
        self.batches: dict[str, _Histogram] = {}
        self.events: dict[tuple[str, str], int] = defaultdict(int)  # (model, event) -> count
        self.versions: dict[tuple[str, str, str], int] = {}  # (model, role, version) -> 1/0

    def observe(self, model: str, version: str, route: str, status: int, seconds: float, rows: int) -> None:
        self.requests[(model, version, route, status)] += 1
        hist = self.latency.get((model, version))
        if hist is None:
            hist = self.latency[(model, version)] = _Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def batch(self, model: str, size: int) -> None:
        hist = self.batches.get(model)
        if hist is None:
            hist = self.batches[model] = _Histogram(BATCH_BUCKETS)
        hist.observe(size)

    def event(self, model: str, event: str, n: int = 1) -> None:
        self.events[(model, event)] += n

    def set_version(self, model: str, role: str, version: str) -> None:
        for key in [k for k in self.versions if k[0] == model and k[1] == role]:
            self.versions[key] = 0
        self.versions[(model, role, version)] = 1

    def render(self) -> str:
        """The Prometheus text exposition format."""
        lines = ["# HELP mloop_requests_total Prediction requests by model, version, route and status.",
                 "# TYPE mloop_requests_total counter"]
        errors: dict[str, int] = defaultdict(int)
        for (model, version, route, status), n in sorted(self.requests.items()):
            lines.append(f'mloop_requests_total{{model="{model}",version="{version}",route="{route}",'
                         f'status="{status}"}} {n}')
            if status >= 400:
                errors[model] += n
        lines += ["# HELP mloop_request_errors_total Requests answered with a 4xx or 5xx status.",
                  "# TYPE mloop_request_errors_total counter"]
        lines += [f'mloop_request_errors_total{{model="{m}"}} {n}' for m, n in sorted(errors.items())]
        lines += ["# HELP mloop_request_latency_seconds Time from body received to response ready.",
                  "# TYPE mloop_request_latency_seconds histogram"]
        for (model, version), hist in sorted(self.latency.items()):
            lines += hist.lines("mloop_request_latency_seconds", f'model="{model}",version="{version}"')
        lines += ["# HELP mloop_batch_size Rows per model call (micro-batches and single requests).",
                  "# TYPE mloop_batch_size histogram"]
        for model, hist in sorted(self.batches.items()):
            lines += hist.lines("mloop_batch_size", f'model="{model}"')
        lines += ["# HELP mloop_events_total Cache hits and misses, fallbacks, breaker trips, reloads, shadow calls.",
                  "# TYPE mloop_events_total counter"]
        lines += [f'mloop_events_total{{model="{m}",event="{e}"}} {n}' for (m, e), n in sorted(self.events.items())]
        lines += ["# HELP mloop_model_version Which version serves each role (1 = current).",
                  "# TYPE mloop_model_version gauge"]
        lines += [f'mloop_model_version{{model="{m}",role="{r}",version="{v}"}} {on}'
                  for (m, r, v), on in sorted(self.versions.items())]
        return "\n".join(lines) + "\n"
