"""PyTorch models as TorchScript, loaded on the CPU; loading needs trust.

TorchScript holds no pickled Python classes, but it is a program: its ops can read and write
files (``torch.from_file(path, shared=True)`` maps any file into a tensor that predictions
return or that writes change), so a TorchScript file is code and loads only with ``trusted=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop._util.optional import require
from mloop.errors import InvalidInputError
from mloop.registry.flavors import class_modules, model_file
from mloop.registry.flavors._trust import Trust, require_full

WHY = ("is a TorchScript program: its ops can read and write any file the process can "
       "(torch.from_file), at load (__setstate__) and at every prediction.")


class TorchFlavor:
    """A ``torch.nn.Module`` (scripted, or traced on the input example) or a ScriptModule."""

    name: ClassVar[str] = "torch"
    packages: ClassVar[tuple[str, ...]] = ("torch", "numpy")
    needs_trust: ClassVar[bool] = True

    def matches(self, model: Any) -> bool:
        return "torch" in class_modules(model)

    def save(self, model: Any, folder: Path, example: pd.DataFrame | np.ndarray | None) -> dict[str, Any]:
        torch = require("torch", extra="torch")
        model = model.eval() if hasattr(model, "eval") else model
        scripted = model if isinstance(model, torch.jit.ScriptModule) else _script(torch, model, example)
        torch.jit.save(scripted, str(folder / "model.pt"))
        return {"file": "model.pt", "format": "torchscript", "dtype": "float32"}

    def load(self, folder: Path, options: dict[str, Any], trusted: Trust) -> Any:
        require_full(trusted, self.name, WHY)
        torch = require("torch", extra="torch")
        return torch.jit.load(str(model_file(folder, options, "model.pt")), map_location="cpu").eval()

    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any:
        torch = require("torch", extra="torch")
        arr = data.to_numpy(dtype="float32") if isinstance(data, pd.DataFrame) else np.asarray(data, "float32")
        with torch.no_grad():
            out = native(torch.from_numpy(np.require(arr, requirements=["C", "W"])))
        return out.detach().cpu().numpy()


def _script(torch: Any, model: Any, example: pd.DataFrame | np.ndarray | None) -> Any:
    try:
        return torch.jit.script(model)
    except Exception as script_error:
        if example is None:
            raise InvalidInputError(
                f"The PyTorch model cannot be scripted ({str(script_error).splitlines()[0]}); "
                "pass input_example= so it can be traced instead.",
                field="input_example", value=None, expected="an example input to trace the model") from script_error
        arr = example.to_numpy(dtype="float32") if isinstance(example, pd.DataFrame) else example.astype("float32")
        return torch.jit.trace(model, torch.from_numpy(np.ascontiguousarray(arr[:5])))
