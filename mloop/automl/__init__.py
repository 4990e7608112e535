"""AutoML under a time budget: FLAML searches, mloop tracks, refits the winner plainly and registers it.

>>> from mloop.automl import automl
"""

from mloop.automl.search import AutoMLResult, automl

__all__ = ["AutoMLResult", "automl"]
