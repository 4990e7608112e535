"""scikit-learn models and pipelines, saved with skops: loading constructs only the types and functions on
mloop's trusted list (see ``_trust``), so it needs no trust in the file's author."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop._util.optional import import_skops
from mloop.errors import InvalidInputError
from mloop.registry.flavors import class_modules, model_file
from mloop.registry.flavors._structure import check_state
from mloop.registry.flavors._trust import Trust, full, refused


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

    def load(self, folder: Path, options: dict[str, Any], trusted: Trust) -> Any:
        sio = import_skops()
        data = model_file(folder, options, "model.skops").read_bytes()  # one read: the bytes checked are loaded
        found = sio.get_untrusted_types(data=data)
        names = refused(found, trusted)
        if names:
            raise InvalidInputError(
                f"The model file refers to {names}, which are not on mloop's list of types and functions that "
                "are safe to construct: loading or calling them could run code. If you have checked them, load "
                f"with trusted={names}; if you trust the model's author, with trusted=True (mloop serve --trusted).",
                field="trusted", value=names, expected="these names in trusted=[...], or trusted=True")
        model = sio.loads(data, trusted=found or None)  # every name in found is allowed by now
        if not full(trusted):
            check_state(model, trusted if isinstance(trusted, frozenset) else frozenset())
        return model

    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any:
        return native.predict(data)


def _qualname(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"
