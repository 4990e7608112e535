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
from mloop.registry.flavors._trust import Trust

__all__ = ["FLAVORS", "Flavor", "Trust", "detect", "get_flavor", "model_file"]


class Flavor(Protocol):
    """Save, load and call one model format."""

    name: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]  # distributions whose versions the manifest records
    needs_trust: ClassVar[bool]  # loading runs code from the file (pickle, TorchScript): only with trusted=True

    def matches(self, model: Any) -> bool: ...
    def save(self, model: Any, folder: Path, example: pd.DataFrame | np.ndarray | None) -> dict[str, Any]: ...
    def load(self, folder: Path, options: dict[str, Any], trusted: Trust) -> Any: ...
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


def model_file(folder: Path, options: dict[str, Any], default: str) -> Path:
    """The flavor's file named by the manifest's ``file`` option: a plain name inside ``folder``, never a path
    out of it (the manifest comes from whoever uploaded the model)."""
    name = options.get("file", default)
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise InvalidInputError(field="flavor_options.file", value=name, expected="a file name inside the model folder")
    return folder / name


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
