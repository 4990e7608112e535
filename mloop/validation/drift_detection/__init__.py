"""Drift: per-column statistics and distances between a reference and current data, reports, concept drift."""

from mloop.validation.drift_detection.compute import RESULT_VERSION, ColumnDrift, DriftResult, drift
from mloop.validation.drift_detection.methods import METHODS, DriftMethod, Pair, register_method

__all__ = ["METHODS", "RESULT_VERSION", "ColumnDrift", "DriftMethod", "DriftResult", "Pair", "drift",
           "register_method"]
