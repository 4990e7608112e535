"""LightGBM models in LightGBM's own text format (no pickle): Booster or the scikit-learn wrappers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mloop._util.optional import require
from mloop.errors import InvalidInputError
from mloop.registry.flavors import Trust, class_modules, model_file
from mloop.registry.flavors._structure import check_indices, check_links
from mloop.registry.flavors._trust import full


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
        path = model_file(folder, options, "model.txt")
        if full(trusted):
            return _Loaded(lgb.Booster(model_file=str(path)), options.get("classes"))
        text = _checked(path.read_text(encoding="utf-8", errors="replace"))
        return _Loaded(lgb.Booster(model_str=text), options.get("classes"))

    def predict(self, native: Any, data: pd.DataFrame | np.ndarray) -> Any:
        return native.predict(data)


class _Loaded:
    """A Booster that answers like the estimator it came from (labels for classifiers)."""

    def __init__(self, booster: Any, classes: list[Any] | None) -> None:
        self.booster = booster
        self.classes = np.asarray(classes) if classes is not None else None

    def predict(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        raw = np.asarray(self.booster.predict(_with_categories(data, self.booster.pandas_categorical)))
        if self.classes is None:
            return raw
        index = (raw > 0.5).astype(int) if raw.ndim == 1 else raw.argmax(axis=1)
        return self.classes[index]


def _with_categories(data: Any, trained: list[list[Any]] | None) -> Any:
    """A frame whose category columns arrive as text (a signature written before mloop recorded categories
    says 'string' for them) gets them back as categories: LightGBM keeps each category column's categories, in
    the training frame's column order, and refuses a frame with fewer category columns than it was trained on."""
    if not trained or not isinstance(data, pd.DataFrame):
        return data
    types = pd.api.types
    text = [c for c in data.columns if not types.is_numeric_dtype(data[c].dtype) and not types.is_bool_dtype(
        data[c].dtype) and not types.is_datetime64_any_dtype(data[c].dtype)]
    if len(text) != len(trained) or all(isinstance(data[c].dtype, pd.CategoricalDtype) for c in text):
        return data  # not the shape this repair knows: LightGBM's own error says what is wrong
    return data.assign(**{c: pd.Categorical(data[c], categories=categories)
                          for c, categories in zip(text, trained, strict=True)})


def _checked(text: str) -> str:
    """The model text, once its trees' indices are checked, without ``tree_sizes``.

    LightGBM's compiled predictor follows a tree's child, feature and category indices unchecked (a crafted file
    reads memory out of bounds: a crash, or worse). Without ``tree_sizes`` LightGBM parses the trees one after
    the other, so a malformed tree is an exception instead of an abort inside its parallel parser.
    """
    lines = text.splitlines()
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in lines:
        if line.startswith("end of trees"):
            break
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
            continue
        key, sep, value = line.partition("=")
        if sep:
            if key.strip() in current:
                _bad(f"the key {key.strip()!r} twice in one section", "each key once")
            current[key.strip()] = value.strip()
    try:
        width = int(header["max_feature_idx"]) + 1
        classes, per_iteration = int(header.get("num_class", "1")), int(header.get("num_tree_per_iteration", "1"))
        if classes != per_iteration:  # the output has num_class columns, of which only the trees' are written
            _bad(f"num_class={classes} with {per_iteration} trees per iteration", "one tree per class")
        for option in header.get("objective", "").split()[1:]:  # the objective transforms num_class outputs too
            if option.startswith("num_class:") and int(option.removeprefix("num_class:")) != classes:
                _bad(f"an objective over {option} with num_class={classes}", "the objective's num_class")
        for i, tree in enumerate(trees):
            _check_tree(f"LightGBM tree {i}", tree, width)
    except (KeyError, ValueError) as exc:
        _bad(f"a missing or malformed field ({exc})", "a model text LightGBM wrote")
    return "\n".join(line for line in lines if not line.startswith("tree_sizes="))


def _check_tree(where: str, tree: dict[str, str], width: int) -> None:
    leaves = int(tree.get("num_leaves", "1"))
    if leaves <= 1:
        return
    n = leaves - 1
    left, right, feature, decision = (np.array(tree[k].split(), dtype=np.int64) for k in
                                      ("left_child", "right_child", "split_feature", "decision_type"))
    if any(len(a) != n for a in (left, right, feature, decision)):
        _bad(f"{where} with arrays of other lengths than its {n} nodes", "one entry per node")
    children = np.concatenate([left, right])
    check_links(where, children[children >= 0], n)
    check_indices(where, "leaf index", ~children[children < 0], leaves)
    check_indices(where, "split feature", feature, width)
    categorical = (decision & 1) != 0
    if categorical.any():
        num_cat = int(tree.get("num_cat", "0"))
        thresholds = np.array(tree["threshold"].split(), dtype=np.float64)
        if len(thresholds) != n:
            _bad(f"{where} with arrays of other lengths than its {n} nodes", "one entry per node")
        check_indices(where, "category set", thresholds[categorical].astype(np.int64), num_cat)
        bounds = np.array(tree.get("cat_boundaries", "").split(), dtype=np.int64)
        known = len(tree.get("cat_threshold", "").split())
        if len(bounds) != num_cat + 1 or bounds[0] != 0 or (np.diff(bounds) < 0).any() or bounds[-1] > known:
            _bad(f"{where} with category boundaries outside its category words", "boundaries LightGBM wrote")
    if tree.get("is_linear", "0") != "0":
        check_indices(where, "linear leaf feature", np.array(tree.get("leaf_features", "").split(), dtype=np.int64),
                      width)


def _bad(value: str, expected: str) -> None:
    raise InvalidInputError(f"The LightGBM model file holds {value}; expected {expected}. Predicting with it could "
                            "read memory it should not; load it with trusted=True only if you trust its author.",
                            field="model", value=value, expected=expected)
