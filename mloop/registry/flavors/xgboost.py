"""XGBoost models in XGBoost's own JSON format (no pickle): Booster or the scikit-learn wrappers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop._util.optional import require
from mloop.registry.flavors import Trust, class_modules, model_file

_WRAPPERS = ("XGBRegressor", "XGBClassifier", "XGBRanker", "XGBRFRegressor", "XGBRFClassifier")


class XGBoostFlavor:
    """``xgboost.Booster`` or ``XGBRegressor`` / ``XGBClassifier`` / ... saved with ``save_model``."""

    name: ClassVar[str] = "xgboost"
    packages: ClassVar[tuple[str, ...]] = ("xgboost", "numpy", "scipy")
    needs_trust: ClassVar[bool] = False

    def matches(self, model: Any) -> bool:
        return "xgboost" in class_modules(model)

    def save(self, model: Any, folder: Path, example: pd.DataFrame | np.ndarray | None) -> dict[str, Any]:
        model.save_model(str(folder / "model.json"))
        kind = type(model).__name__
        return {"file": "model.json", "class": kind if kind in _WRAPPERS else "Booster"}

    def load(self, folder: Path, options: dict[str, Any], trusted: Trust) -> Any:
        xgb = require("xgboost", extra="xgboost")
        kind = options.get("class", "Booster")
        model = getattr(xgb, kind)() if kind in _WRAPPERS else xgb.Booster()
        model.load_model(str(model_file(folder, options, "model.json")))
        return model

    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any:
        if type(native).__name__ == "Booster":
            xgb = require("xgboost", extra="xgboost")
            return native.predict(xgb.DMatrix(data))
        return native.predict(data)
