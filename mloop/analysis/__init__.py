"""Model analysis: metrics by slice with intervals, calibration, confusion, residuals and group fairness.

>>> from mloop.analysis import analyze, attach_analysis, model_analysis
"""

from mloop.analysis.analyze import analyze
from mloop.analysis.result import Analysis
from mloop.analysis.store import attach_analysis, model_analysis

__all__ = ["Analysis", "analyze", "attach_analysis", "model_analysis"]
