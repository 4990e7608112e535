"""ONNX models, run with onnxruntime on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop._util.optional import require
from mloop.errors import InvalidInputError
from mloop.registry.flavors import Trust, class_modules, model_file

_NP_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
             "tensor(int32)": "int32", "tensor(string)": "object", "tensor(bool)": "bool"}


class OnnxFlavor:
    """An ``onnx.ModelProto``; a single input takes the whole matrix, several inputs take one column each."""

    name: ClassVar[str] = "onnx"
    packages: ClassVar[tuple[str, ...]] = ("onnx", "onnxruntime", "numpy")
    needs_trust: ClassVar[bool] = False

    def matches(self, model: Any) -> bool:
        return "onnx" in class_modules(model)

    def save(self, model: Any, folder: Path, example: pd.DataFrame | np.ndarray | None) -> dict[str, Any]:
        onnx = require("onnx", extra="onnx")
        onnx.checker.check_model(model)
        onnx.save_model(model, str(folder / "model.onnx"))
        return {"file": "model.onnx", "inputs": [i.name for i in model.graph.input]}

    def load(self, folder: Path, options: dict[str, Any], trusted: Trust) -> Any:
        """onnxruntime refuses external data outside the model folder (symlinks too): such a file, or any it
        cannot load, is an InvalidInputError rather than onnxruntime's own exception."""
        ort = require("onnxruntime", extra="onnx")
        path = model_file(folder, options, "model.onnx")
        try:
            return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise InvalidInputError(f"onnxruntime cannot load {path.name}: {exc}", field="model", value=path.name,
                                    expected="an ONNX model whose external data lies inside the model folder"
                                    ) from exc

    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any:
        if not hasattr(native, "get_inputs"):  # a ModelProto before saving: run it once in memory
            ort = require("onnxruntime", extra="onnx")
            native = ort.InferenceSession(native.SerializeToString(), providers=["CPUExecutionProvider"])
        inputs = native.get_inputs()
        if len(inputs) == 1:
            arr = data.to_numpy() if isinstance(data, pd.DataFrame) else np.asarray(data)
            feed = {inputs[0].name: arr.astype(_NP_TYPES.get(inputs[0].type, "float32"))}
        else:
            frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
            feed = {i.name: frame[i.name].to_numpy().astype(_NP_TYPES.get(i.type, "float32")).reshape(-1, 1)
                    for i in inputs}
        outputs = native.run(None, feed)
        return outputs[0]
