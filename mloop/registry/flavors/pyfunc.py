"""Any Python object with ``predict`` (or any callable), saved with cloudpickle; loading needs trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop.errors import InvalidInputError
from mloop.registry.flavors import model_file
from mloop.registry.flavors._trust import Trust, require_full

WHY = "is a pickle: unpickling runs arbitrary code stored in the file."


class PythonFunctionFlavor:
    """The generic flavor: ``predict(frame)`` of an object, or the object called on the frame."""

    name: ClassVar[str] = "python_function"
    packages: ClassVar[tuple[str, ...]] = ("cloudpickle", "numpy", "pandas")
    needs_trust: ClassVar[bool] = True

    def matches(self, model: Any) -> bool:
        return hasattr(model, "predict") or callable(model)

    def save(self, model: Any, folder: Path, example: pd.DataFrame | np.ndarray | None) -> dict[str, Any]:
        import cloudpickle

        try:
            (folder / "model.pkl").write_bytes(cloudpickle.dumps(model))
        except Exception as exc:
            raise InvalidInputError(f"The model cannot be pickled: {exc}", field="model",
                                    value=type(model).__name__, expected="a picklable object") from exc
        return {"file": "model.pkl", "serialization": "cloudpickle", "call": "predict" if hasattr(model, "predict")
                else "call"}

    def load(self, folder: Path, options: dict[str, Any], trusted: Trust) -> Any:
        require_full(trusted, self.name, WHY)
        import cloudpickle

        return cloudpickle.loads(model_file(folder, options, "model.pkl").read_bytes())

    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any:
        return native.predict(data) if hasattr(native, "predict") else native(data)
