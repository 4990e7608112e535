"""Monitoring: a served model's prediction log watched over time, as windowed series with alerts.

``create_monitor`` names what to watch (a model, a window of 5 minutes to a day, the slices to measure
performance on); ``run_monitor`` folds the prediction log into per-window figures (traffic, latency, each input's
distribution, drift against the version's training profile and against the previous window, violations of the
training schema, and, once labels arrive, performance overall and per slice); ``series`` reads them back.
"""

from mloop.monitoring.monitor import (
    Monitor,
    RunReport,
    create_monitor,
    get_monitor,
    list_monitors,
    run_monitor,
    series,
    window_profile,
)

__all__ = ["Monitor", "RunReport", "create_monitor", "get_monitor", "list_monitors", "run_monitor", "series",
           "window_profile"]
