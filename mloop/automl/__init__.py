"""AutoML under a time budget: FLAML searches, mloop tracks, refits the winner plainly and registers it.

``mloop.automl(...)`` is the function and ``mloop.automl`` is also this package: once the package is imported,
Python sets it as the attribute ``automl`` of ``mloop``, hiding the function. So the package itself is callable
and calls ``automl``.

>>> import mloop.automl
>>> mloop.automl.automl is mloop.automl.search.automl and callable(mloop.automl)
True
"""

import sys
import types
from typing import Any

from mloop.automl.search import AutoMLResult, automl

__all__ = ["AutoMLResult", "automl"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> AutoMLResult:
        return automl(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
