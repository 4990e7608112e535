"""Every flavor round-trips through a model folder and predicts the same as the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.registry import load_model, save_model

rng = np.random.default_rng(1)
X = pd.DataFrame(rng.normal(size=(80, 4)), columns=["a", "b", "c", "d"])
Y = X["a"] * 2 - X["b"] + rng.normal(scale=0.1, size=80)


def _round_trip(model, tmp_path: Path, example, flavor: str, trusted: bool = False):  # type: ignore[no-untyped-def]
    manifest = save_model(model, tmp_path / "m", input_example=example)
    assert manifest["flavor"] == flavor
    loaded = load_model(tmp_path / "m", trusted=trusted)
    assert loaded.flavor == flavor and loaded.signature is not None
    return loaded


def test_xgboost_regressor_and_booster(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    model = xgb.XGBRegressor(n_estimators=10, max_depth=3).fit(X, Y)
    loaded = _round_trip(model, tmp_path, X.head(), "xgboost")
    assert (tmp_path / "m" / "model.json").is_file()
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6)
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, Y), num_boost_round=5)
    save_model(booster, tmp_path / "b", input_example=X.head())
    np.testing.assert_allclose(load_model(tmp_path / "b").predict(X), booster.predict(xgb.DMatrix(X)), rtol=1e-6)


def test_lightgbm_regressor_and_classifier_labels(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    model = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, Y)
    loaded = _round_trip(model, tmp_path, X.head(), "lightgbm")
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6)
    labels = np.where(Y > 0, "up", "down")
    clf = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, labels)
    save_model(clf, tmp_path / "c", input_example=X.head())
    assert (load_model(tmp_path / "c").predict(X) == clf.predict(X)).all()


def test_torchscript_module_on_cpu(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    example = X.to_numpy(dtype="float32")
    loaded = _round_trip(net, tmp_path, example[:5], "torch", trusted=True)  # TorchScript is code (test_trust)
    assert loaded.signature.input_kind == "tensor" and len(loaded.signature.inputs) == 4
    with torch.no_grad():
        expected = net(torch.from_numpy(example.copy())).numpy()
    np.testing.assert_allclose(loaded.predict(example), expected, rtol=1e-5)
    np.testing.assert_allclose(loaded.predict(example.tolist()), expected, rtol=1e-5)


def test_onnx_graph_with_onnxruntime(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[2.0], [-1.0], [0.0], [0.5]], dtype="float32")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializer=[numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    example = X.to_numpy(dtype="float32")
    loaded = _round_trip(model, tmp_path, example[:5], "onnx")
    np.testing.assert_allclose(loaded.predict(example), example @ weights, rtol=1e-5)


def test_heavy_libraries_are_not_imported_to_detect_a_flavor() -> None:
    import subprocess
    import sys

    code = ("import sys; from sklearn.linear_model import Ridge; from mloop.registry.flavors import detect;"
            "detect(Ridge()); print(sorted(m for m in ('torch', 'xgboost', 'lightgbm', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_saving_and_loading_a_sklearn_model_does_not_import_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    # skops walks every sklearn package at import; one of them imports torch (2-3 s per fresh process).
    code = f"""
import sys
from sklearn.linear_model import LinearRegression
from mloop.registry import load_model, save_model
save_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), {str(tmp_path / "m")!r})
assert abs(load_model({str(tmp_path / "m")!r}).predict([[2.0]])[0] - 2.0) < 1e-9
print("torch" in sys.modules)
import sklearn.externals.array_api_compat.torch as shim  # the real package, once skops is loaded
print(hasattr(shim, "asarray"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
