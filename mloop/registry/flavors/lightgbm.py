"""LightGBM models in LightGBM's own text format (no pickle): Booster or the scikit-learn wrappers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop._util.optional import require
from mloop.registry.flavors import Trust, class_modules, model_file


class LightGBMFlavor:
    """``lightgbm.Booster``, ``LGBMRegressor`` or ``LGBMClassifier``; classifiers keep their class labels."""

    name: ClassVar[str] = "lightgbm"
    packages: ClassVar[tuple[str, ...]] = ("lightgbm", "numpy", "scipy")
    needs_trust: ClassVar[bool] = False

    def matches(self, model: Any) -> bool:
        return "lightgbm" in class_modules(model)

    def save(self, model: Any, folder: Path, example: pd.DataFrame | np.ndarray | None) -> dict[str, Any]:
        booster = getattr(model, "booster_", model)
        booster.save_model(str(folder / "model.txt"))
        options: dict[str, Any] = {"file": "model.txt", "class": type(model).__name__}
        classes = getattr(model, "classes_", None)
        if classes is not None:
            options["classes"] = np.asarray(classes).tolist()
        return options

    def load(self, folder: Path, options: dict[str, Any], trusted: Trust) -> Any:
        lgb = require("lightgbm", extra="lightgbm")
        return _Loaded(lgb.Booster(model_file=str(model_file(folder, options, "model.txt"))),
                       options.get("classes"))

    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any:
        return native.predict(data)


class _Loaded:
    """A Booster that answers like the estimator it came from (labels for classifiers)."""

    def __init__(self, booster: Any, classes: list[Any] | None) -> None:
        self.booster = booster
        self.classes = np.asarray(classes) if classes is not None else None

    def predict(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        raw = np.asarray(self.booster.predict(data))
        if self.classes is None:
            return raw
        index = (raw > 0.5).astype(int) if raw.ndim == 1 else raw.argmax(axis=1)
        return self.classes[index]
