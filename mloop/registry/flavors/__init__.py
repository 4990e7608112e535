"""Model flavors: how one kind of model is saved to a folder and loaded back, one module per format.

A flavor is detected from the model object by the modules of its classes, so
detecting never imports a heavy library the model does not already use.

>>> from sklearn.linear_model import Ridge
>>> detect(Ridge()).name
'sklearn'
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from mloop.errors import InvalidInputError

__all__ = ["FLAVORS", "Flavor", "detect", "get_flavor"]


class Flavor(Protocol):
    """Save, load and call one model format."""

    name: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]  # distributions whose versions the manifest records
    needs_trust: ClassVar[bool]  # loading runs code from the file (pickle)

    def matches(self, model: Any) -> bool: ...
    def save(self, model: Any, folder: Path, example: pd.DataFrame | np.ndarray | None) -> dict[str, Any]: ...
    def load(self, folder: Path, options: dict[str, Any], trusted: bool) -> Any: ...
    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any: ...


# Detection order matters: specific formats before the generic python-function flavor.
FLAVORS: dict[str, str] = {
    "torch": "mloop.registry.flavors.torch:TorchFlavor",
    "onnx": "mloop.registry.flavors.onnx:OnnxFlavor",
    "xgboost": "mloop.registry.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "mloop.registry.flavors.lightgbm:LightGBMFlavor",
    "sklearn": "mloop.registry.flavors.sklearn:SklearnFlavor",
    "python_function": "mloop.registry.flavors.pyfunc:PythonFunctionFlavor",
}
_cache: dict[str, Flavor] = {}


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name`` (InvalidInputError names the known ones)."""
    if name not in _cache:
        target = FLAVORS.get(name)
        if target is None:
            raise InvalidInputError(field="flavor", value=name, expected=f"one of {sorted(FLAVORS)}")
        module, cls = target.split(":")
        _cache[name] = getattr(importlib.import_module(module), cls)()
    return _cache[name]


def class_modules(model: Any) -> set[str]:
    """Top-level packages of the model's classes (``{'sklearn', 'builtins'}``), without importing anything."""
    return {c.__module__.split(".")[0] for c in type(model).__mro__}


def detect(model: Any) -> Flavor:
    """The flavor that saves ``model``; InvalidInputError when none can."""
    for name in FLAVORS:
        flavor = get_flavor(name)
        if flavor.matches(model):
            return flavor
    raise InvalidInputError(field="model", value=type(model).__name__,
                            expected="a scikit-learn, XGBoost, LightGBM, PyTorch or ONNX model, "
                                     "or an object with a predict() method, or a callable")
