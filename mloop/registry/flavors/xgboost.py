"""XGBoost models in XGBoost's own JSON format (no pickle): Booster or the scikit-learn wrappers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop._util.optional import require
from mloop.errors import InvalidInputError
from mloop.registry.flavors import Trust, class_modules, model_file
from mloop.registry.flavors._structure import check_indices, check_links
from mloop.registry.flavors._trust import full

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
        if not full(trusted):
            booster = model if kind not in _WRAPPERS else model.get_booster()
            _check(json.loads(bytes(booster.save_raw(raw_format="json"))))
        return model

    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any:
        booster = native if type(native).__name__ == "Booster" else native.get_booster()
        data = _with_categories(booster, data)
        if booster is native:
            xgb = require("xgboost", extra="xgboost")
            # a frame's category columns reach the trees as their codes, in the training order the signature rebuilt
            return native.predict(xgb.DMatrix(data, enable_categorical=isinstance(data, pd.DataFrame)))
        return native.predict(data)


def _with_categories(booster: Any, data: Any) -> Any:
    """A frame whose categorical features arrive as text (a signature written before mloop recorded categories
    says 'string' for them) gets them as categories again; XGBoost maps them to its training codes by value."""
    types = booster.feature_types if isinstance(data, pd.DataFrame) else None
    if not types or "c" not in types or not hasattr(booster, "get_categories"):  # before 3.1 codes are not mapped
        return data
    text = [name for name, kind in zip(booster.feature_names or (), types, strict=False)
            if kind == "c" and name in data.columns and not isinstance(data[name].dtype, pd.CategoricalDtype)]
    return data.assign(**{name: data[name].astype("category") for name in text}) if text else data


def _check(saved: dict[str, Any]) -> None:
    """InvalidInputError when a tree of the loaded model (as XGBoost saves it again) has a child, feature, category
    or output index outside its arrays: XGBoost's compiled predictor follows them unchecked (a crafted file reads
    memory out of bounds: a crash, or worse)."""
    try:
        learner = saved["learner"]
        params = learner["learner_model_param"]
        width = int(params["num_feature"])
        groups = max(int(params.get("num_class", 0)), int(params.get("num_target", 1)), 1)
        booster = learner["gradient_booster"]
        if booster["name"] == "gblinear":
            return
        model = booster["gbtree"]["model"] if booster["name"] == "dart" else booster["model"]
        trees = model["trees"]
        info = np.asarray(model["tree_info"], dtype=np.int64)
        if len(info) != len(trees):
            _bad(f"{len(trees)} trees and {len(info)} tree groups", "one group per tree")
        check_indices("XGBoost model", "tree group", info, groups)
        indptr = np.asarray(model.get("iteration_indptr", [0, len(trees)]), dtype=np.int64)
        if indptr.size and (indptr[0] != 0 or indptr[-1] != len(trees) or (np.diff(indptr) < 0).any()):
            _bad("iteration bounds outside its trees", "iteration bounds from 0 to the number of trees")
        if booster["name"] == "dart" and len(booster.get("weight_drop", [])) != len(trees):
            _bad("a dart weight count unlike its tree count", "one weight per tree")
        for i, tree in enumerate(trees):
            _check_tree(f"XGBoost tree {i}", tree, width)
    except (KeyError, TypeError, ValueError) as exc:
        _bad(f"a missing or malformed field ({exc})", "a model XGBoost wrote")


def _check_tree(where: str, tree: dict[str, Any], width: int) -> None:
    left, right, feature = (np.asarray(tree[k], dtype=np.int64) for k in
                            ("left_children", "right_children", "split_indices"))
    n = len(left)
    if n == 0 or len(right) != n or len(feature) != n:
        _bad(f"{where} with arrays of other lengths", "one entry per node")
    split = left != -1
    check_links(where, np.concatenate([left[split], right[split]]), n)
    check_indices(where, "split feature", feature[split], width)
    nodes = np.asarray(tree.get("categories_nodes", []), dtype=np.int64)
    if nodes.size:
        segments = np.asarray(tree["categories_segments"], dtype=np.int64)
        sizes = np.asarray(tree["categories_sizes"], dtype=np.int64)
        known = len(tree["categories"])
        check_indices(where, "categorical node", nodes, n)
        if len(segments) != len(nodes) or len(sizes) != len(nodes) or (segments < 0).any() or (sizes < 0).any() \
                or (segments + sizes > known).any():
            _bad(f"{where} with category segments outside its categories", "segments XGBoost wrote")


def _bad(value: str, expected: str) -> None:
    raise InvalidInputError(f"The XGBoost model file holds {value}; expected {expected}. Predicting with it could "
                            "read memory it should not; load it with trusted=True only if you trust its author.",
                            field="model", value=value, expected=expected)
