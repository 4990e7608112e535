"""scikit-learn models and pipelines, saved with skops so loading needs no pickle trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop._util.optional import import_skops
from mloop.errors import InvalidInputError
from mloop.registry.flavors import class_modules

# Types skops does not trust by default but that only hold data: safe to construct.
_SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.slice", "collections.")


class SklearnFlavor:
    """Any scikit-learn estimator, Pipeline or ColumnTransformer."""

    name: ClassVar[str] = "sklearn"
    packages: ClassVar[tuple[str, ...]] = ("scikit-learn", "skops", "numpy", "scipy")
    needs_trust: ClassVar[bool] = False

    def matches(self, model: Any) -> bool:
        return "sklearn" in class_modules(model) and hasattr(model, "predict")

    def save(self, model: Any, folder: Path, example: pd.DataFrame | np.ndarray | None) -> dict[str, Any]:
        sio = import_skops()
        try:
            sio.dump(model, folder / "model.skops")
        except Exception as exc:  # skops cannot represent some custom classes
            raise InvalidInputError(
                f"scikit-learn model {type(model).__name__} cannot be saved with skops ({exc}); "
                "log it with flavor='python_function' (cloudpickle, loading then needs trusted=True).",
                field="model", value=type(model).__name__, expected="a model skops can save") from exc
        return {"file": "model.skops", "serialization": "skops", "class": _qualname(model)}

    def load(self, folder: Path, options: dict[str, Any], trusted: bool) -> Any:
        sio = import_skops()
        path = folder / options.get("file", "model.skops")
        unknown = sio.get_untrusted_types(file=path)
        risky = [t for t in unknown if not t.startswith(_SAFE_PREFIXES)]
        if risky and not trusted:
            raise InvalidInputError(
                f"The model file refers to types outside scikit-learn, NumPy and SciPy: {risky}. "
                "Constructing them may run their code; load with trusted=True only if you trust the source.",
                field="trusted", value=False, expected="True for a model with custom types")
        return sio.load(path, trusted=unknown)

    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any:
        return native.predict(data)


def _qualname(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"
