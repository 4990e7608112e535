"""Checks on the state of a loaded scikit-learn model, before it predicts once: tree indices, text inputs.

scikit-learn's compiled tree code follows the child and feature indices stored in a
``Tree`` (decision trees, forests, gradient boosting) or a ``TreePredictor``
(HistGradientBoosting) without checking them, so a crafted file could read memory out of
bounds or loop forever. A tree built by scikit-learn always satisfies what is checked here:
every split node's children come after it and inside the node array, its feature is a
column the model accepts, and a forest's trees accept exactly the forest's columns (the
forest checks the input once and hands it to every tree unchecked), and gradient boosting
has no more trees per stage than its initial predictions have columns (its compiled loop
adds tree k's answer to column k unchecked).

A vectorizer's vocabulary maps terms to the columns of a sparse matrix that the next step multiplies unchecked,
so each index must lie inside it. A text vectorizer with ``input="filename"`` (or ``"file"``) opens the files its
input names: served, it would read the server's files for whoever sends a request, so it is refused too.

``n_jobs`` is how many worker processes joblib starts (FeatureUnion, ColumnTransformer and others start that many
at every prediction, whatever the number of tasks): a file's ``n_jobs=100000`` would fork without end, so it is
lowered to this machine's cores (predictions do not change).
"""

from __future__ import annotations

import collections
import functools
import importlib
import os
import types
from typing import Any

import numpy as np

from mloop.errors import InvalidInputError
from mloop.registry.flavors._trust import PARTIAL_TARGETS

__all__ = ["check_state"]

_OPENS_FILES = ("filename", "file")
# term (or label) -> column index maps that vectorizers and MultiLabelBinarizer build sparse matrices from, unchecked
_COLUMN_MAPS = ("vocabulary_", "_cached_dict")

_MAX_CATEGORY = 255  # HistGradientBoosting stores categories in 256-bit bitsets


def check_state(model: Any, user_trusted: frozenset[str] = frozenset()) -> None:
    """InvalidInputError when a tree inside ``model`` has an index that points outside its arrays, a
    text vectorizer opens the files its input names, or a ``functools.partial`` wraps anything other than a
    function in ``PARTIAL_TARGETS`` or one the user trusts by name in ``user_trusted``.

    >>> import functools, numpy as np
    >>> check_state([functools.partial(np.multiply, 2.0)], frozenset({"numpy.multiply"}))
    """
    _visit(model, owner=None, exact_width=None, seen=set(), partials=PARTIAL_TARGETS | user_trusted)


def _tree_types() -> tuple[type, type]:
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    return Tree, TreePredictor


def _visit(obj: Any, owner: Any, exact_width: int | None, seen: set[int], partials: frozenset[str]) -> None:
    if id(obj) in seen or isinstance(obj, str | bytes | int | float | type(None)):
        return
    seen.add(id(obj))
    tree, predictor = _tree_types()
    if isinstance(obj, tree):
        _check_tree(obj, owner)
    elif isinstance(obj, predictor):
        _check_predictor(obj, owner)
    elif isinstance(obj, functools.partial):
        _check_partial(obj, partials)
        for item in (obj.func, *obj.args, *obj.keywords.values()):
            _visit(item, owner, exact_width, seen, partials)
    elif isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            _visit(item, owner, exact_width, seen, partials)
    elif isinstance(obj, dict):  # keys too: a set or dict key can be any hashable object, a partial included
        extra = (obj.default_factory,) if isinstance(obj, collections.defaultdict) else ()
        for item in (*obj.keys(), *obj.values(), *extra):
            _visit(item, owner, exact_width, seen, partials)
    elif isinstance(obj, np.ndarray):
        if obj.dtype == object:
            for item in obj.flat:
                _visit(item, owner, exact_width, seen, partials)
    elif hasattr(obj, "__dict__"):
        _visit_object(obj, exact_width, seen, partials)


def _visit_object(obj: Any, exact_width: int | None, seen: set[int], partials: frozenset[str]) -> None:
    if hasattr(obj, "build_analyzer") and getattr(obj, "input", "content") in _OPENS_FILES:
        _fail(obj, f"input={obj.input!r}", "input='content' (the text itself, not names of files to open)")
    jobs = vars(obj).get("n_jobs")
    if isinstance(jobs, int | np.integer) and jobs > (os.cpu_count() or 1):
        obj.n_jobs = os.cpu_count() or 1  # the server's cores, not the file's number, bound its worker processes
    for name in _COLUMN_MAPS:
        mapping = getattr(obj, name, None)
        if isinstance(mapping, dict):
            _check_vocabulary(obj, mapping)
    if hasattr(obj, "_n_features_outs") and hasattr(obj, "categories_"):
        _check_one_hot(obj)
    if hasattr(obj, "_n_support") and hasattr(obj, "_dual_coef_"):
        _check_libsvm(obj)
    fit_x = vars(obj).get("_fit_X")  # a neighbors model's training rows, which its compiled search reads
    if isinstance(fit_x, np.ndarray) and (fit_x.ndim != 2 or fit_x.shape[1] != getattr(obj, "n_features_in_", -1)
                                          or getattr(obj, "n_samples_fit_", -1) != fit_x.shape[0]):
        _fail(obj, f"training rows of shape {fit_x.shape}",
              f"{getattr(obj, 'n_samples_fit_', None)} rows of n_features_in_={getattr(obj, 'n_features_in_', None)}")
    width = getattr(obj, "n_features_in_", None)
    if exact_width is not None and width is not None and width != exact_width:
        _fail(obj, f"n_features_in_={width}", f"{exact_width}, the columns of the ensemble that holds it")
    for name, value in vars(obj).items():
        if name == "estimators_":
            _visit_members(obj, value, width, seen, partials)
        else:
            _visit(value, obj, None, seen, partials)
    stages = getattr(obj, "estimators_", None)
    if isinstance(stages, np.ndarray) and stages.ndim == 2 and hasattr(obj, "_raw_predict_init"):
        _check_stages(obj, stages.shape[1], width)


def _check_partial(wrapper: functools.partial[Any], targets: frozenset[str]) -> None:
    """A partial is trusted as a wrapper only: what it calls must be one of the functions named for it.

    The comparison is by identity with the object each name resolves to, never by the ``__module__`` and
    ``__qualname__`` the wrapped object reports: skops rebuilds a trusted instance with whatever ``__dict__`` the
    file holds, so any callable trusted type could claim to be ``check_array``."""
    func = wrapper.func
    if not any(_is_target(func, name) for name in targets):
        name, shown = _shown_name(func)
        _fail(wrapper, f"a functools.partial around {shown}",
              f"a partial around one of {sorted(targets)} (or trusted={[name]} if you have checked it)")


def _is_target(func: Any, name: str) -> bool:
    """Whether ``func`` is the object ``name`` (a name on an allow list) resolves to. The names in
    ``PARTIAL_TARGETS`` must resolve to plain functions; a name the user trusts may also be a class, whose exact
    instances (called through the class's own ``__call__``) the user has vouched for."""
    target = _resolve(name)
    if target is None:
        return False
    if name in PARTIAL_TARGETS:
        return isinstance(target, types.FunctionType | types.BuiltinFunctionType) and func is target
    return func is target or (isinstance(target, type) and type(func) is target)


def _resolve(name: str) -> Any:
    """The object a dotted name on an allow list refers to (module, then attributes), or None."""
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except Exception:  # no such module (or it fails to import): try a shorter module path
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _shown_name(func: Any) -> tuple[str, str]:
    """The name to trust and how the message shows it: a function's own name, else its type's (an object's
    ``__module__`` and ``__qualname__`` may be entries of its ``__dict__``, written by the file's author)."""
    if isinstance(func, types.FunctionType | types.BuiltinFunctionType | np.ufunc | type):
        name = f"{getattr(func, '__module__', None)}.{getattr(func, '__qualname__', None)}"
        return name, name
    name = f"{type(func).__module__}.{type(func).__qualname__}"
    return name, f"an instance of {name}"


def _check_vocabulary(vectorizer: Any, vocabulary: dict[Any, Any]) -> None:
    """A vectorizer's output has one column per vocabulary entry, and each term's column index is taken from the
    vocabulary unchecked into a sparse matrix: an index outside 0..len-1 is read past by the next step's compiled
    product (a crash at predict)."""
    n = len(vocabulary)
    bad = next((v for v in vocabulary.values()
                if not isinstance(v, int | np.integer) or isinstance(v, bool) or not 0 <= v < n), None)
    if bad is not None:
        _fail(vectorizer, f"a vocabulary column index {bad!r}", f"indices in 0..{n - 1}, one per term")


def _check_libsvm(svm: Any) -> None:
    """libsvm (SVC, SVR, NuSVC, NuSVR, OneClassSVM) reads its support, coefficient and intercept arrays with the
    lengths the model claims, unchecked; scikit-learn only checks that the class counts add up to the support
    vectors, and not at all for a precomputed kernel, where each support index picks a column of the input."""
    support = np.asarray(svm.support_, dtype=np.int64)
    n = len(support)
    counts = np.asarray(svm._n_support, dtype=np.int64)
    dual = svm._dual_coef_  # an array, or a sparse matrix for a model fitted on sparse input
    classes = len(counts) if svm._impl in ("c_svc", "nu_svc") else 2
    if svm._impl in ("c_svc", "nu_svc") and counts.sum() != n:
        _fail(svm, f"class counts {counts.tolist()} for {n} support vectors", "counts that add up to them")
    if tuple(dual.shape) != (classes - 1, n) or len(svm._intercept_) != classes * (classes - 1) // 2 \
            or len(svm._probA) not in (0, len(svm._intercept_)) or len(svm._probB) != len(svm._probA):
        _fail(svm, f"coefficients {dual.shape} and {len(svm._intercept_)} intercepts for {n} support vectors",
              "the shapes libsvm wrote")
    vectors = np.asarray(svm.support_vectors_) if not svm._sparse else None
    if svm.kernel == "precomputed":
        rows = int(svm.shape_fit_[0])
        if n and (support.min() < 0 or support.max() >= rows):
            _fail(svm, "a support index out of range", f"indices of training rows, 0..{rows - 1}")
    elif vectors is not None and (vectors.ndim != 2 or vectors.shape[0] != n
                                  or vectors.shape[1] != getattr(svm, "n_features_in_", vectors.shape[1])):
        _fail(svm, f"support vectors of shape {vectors.shape} for {n} support indices",
              "one row per support index, one column per feature")


def _check_one_hot(encoder: Any) -> None:
    """OneHotEncoder turns each column's category code into a column index of a sparse matrix (then, for dense
    output, writes a 1 there) without checking it: every code a column can produce, after the infrequent
    grouping and the dropped category, must be below that column's ``_n_features_outs`` width."""
    categories, widths = list(encoder.categories_), list(encoder._n_features_outs)
    grouping = getattr(encoder, "_default_to_infrequent_mappings", None)
    grouping = grouping if getattr(encoder, "_infrequent_enabled", False) else None
    drops = getattr(encoder, "_drop_idx_after_grouping", None)
    if len(widths) != len(categories) or (grouping is not None and len(grouping) != len(categories)) \
            or (drops is not None and len(drops) != len(categories)):
        _fail(encoder, f"{len(widths)} output widths for {len(categories)} columns", "one width per column")
    for i, known in enumerate(categories):
        known = np.asarray(known)
        if known.dtype.kind in "iuf" and (np.diff(known[~np.isnan(known)] if known.dtype.kind == "f" else known)
                                          <= 0).any():
            _fail(encoder, f"unsorted categories for column {i}", "sorted categories (codes come from a search)")
        mapping = grouping[i] if grouping is not None else None
        codes = np.asarray(mapping if mapping is not None else np.arange(len(known)), dtype=np.int64)
        drop = drops[i] if drops is not None else None
        top = int(codes.max()) if codes.size else -1
        if drop is not None and (not isinstance(drop, int | np.integer) or drop < 0):
            _fail(encoder, f"a dropped category {drop!r} for column {i}", "a category index")
        if drop is not None and top >= drop:
            top -= 1  # codes above the dropped one move down by one; the dropped one is left out
        if (codes.size and codes.min() < 0) or not isinstance(widths[i], int | np.integer) or top >= widths[i]:
            _fail(encoder, f"column {i} with codes up to {top} in {widths[i]!r} output columns",
                  "an output column for every category code")


def _visit_members(ensemble: Any, members: Any, width: int | None, seen: set[int],
                   partials: frozenset[str]) -> None:
    """A forest or boosting model checks the input once and hands it to its members unchecked; bagging and
    isolation forests hand each member the columns ``estimators_features_`` picks for it."""
    subsets = getattr(ensemble, "estimators_features_", None)
    if subsets is None:
        _visit(members, ensemble, width, seen, partials)
        return
    if len(subsets) != len(members):
        _fail(ensemble, f"{len(members)} estimators and {len(subsets)} feature subsets", "one subset per estimator")
    for member, features in zip(members, subsets, strict=True):
        _visit(member, ensemble, len(features), seen, partials)


def _check_stages(boosting: Any, per_stage: int, width: int | None) -> None:
    """Its trees are checked already; the initial predictions (a trusted estimator's) say how many columns
    the compiled loop may write, so compute them for one row of zeros."""
    try:
        columns = boosting._raw_predict_init(np.zeros((1, width or 0))).shape[1]
    except Exception as exc:
        _fail(boosting, f"initial predictions that fail ({type(exc).__name__}: {exc})", "a working init_")
    if per_stage > columns:
        _fail(boosting, f"{per_stage} trees per stage", f"at most {columns}, the columns of its initial predictions")


def _check_tree(tree: Any, owner: Any) -> None:
    width = getattr(owner, "n_features_in_", None)
    if width is None or tree.n_features != width:
        _fail(tree, f"n_features={tree.n_features}", f"the n_features_in_ of the model that holds it ({width})")
    left, right, feature = (np.asarray(a, dtype=np.int64) for a in
                            (tree.children_left, tree.children_right, tree.feature))
    _check_nodes(tree, left, right, feature, ~((left == -1) & (right == -1)), width)


def _check_predictor(predictor: Any, owner: Any) -> None:
    nodes = predictor.nodes
    width = getattr(owner, "n_features_in_", None)
    if width is None:
        _fail(predictor, "no n_features_in_ on its model", "a fitted HistGradientBoosting model")
    split = nodes["is_leaf"] == 0
    _check_nodes(predictor, nodes["left"].astype(np.int64), nodes["right"].astype(np.int64),
                 nodes["feature_idx"].astype(np.int64), split, width)
    categorical = split & (nodes["is_categorical"] != 0)
    if categorical.any():
        _check_categories(predictor, owner, nodes[categorical])


def _check_nodes(where: Any, left: np.ndarray, right: np.ndarray, feature: np.ndarray, split: np.ndarray,
                 width: int) -> None:
    n = len(left)
    index = np.arange(n)
    if len(right) != n or len(feature) != n or n == 0:
        _fail(where, f"{n} nodes with arrays of other lengths", "one entry per node in every array")
    bad_child = split & ((left <= index) | (right <= index) | (left >= n) | (right >= n))
    bad_feature = split & ((feature < 0) | (feature >= width))
    for name, bad in (("child index", bad_child), ("feature index", bad_feature)):
        if bad.any():
            node = int(np.flatnonzero(bad)[0])
            _fail(where, f"node {node} with a {name} out of range",
                  f"children after the node and below {n}, features below {width}")


def _check_categories(predictor: Any, owner: Any, nodes: np.ndarray) -> None:
    mapper = getattr(owner, "_bin_mapper", None)
    is_categorical = np.asarray(getattr(mapper, "is_categorical_", None) if mapper is not None else [], dtype=bool)
    bitsets = np.asarray(predictor.raw_left_cat_bitsets)
    if len(is_categorical) <= int(nodes["feature_idx"].max()) or not is_categorical[nodes["feature_idx"]].all():
        _fail(predictor, "a categorical split on a column the model does not treat as categorical",
              "categorical splits only on categorical columns")
    if bitsets.ndim != 2 or int(nodes["bitset_idx"].max()) >= bitsets.shape[0]:
        _fail(predictor, "a categorical split with a bitset index out of range", "an index into its bitsets")
    for column in np.flatnonzero(is_categorical):
        known = np.asarray(mapper.bin_thresholds_[column], dtype=np.float64)
        if known.size and (known.min() < 0 or known.max() > _MAX_CATEGORY):
            _fail(mapper, f"category codes outside 0..{_MAX_CATEGORY} for column {column}",
                  f"category codes 0..{_MAX_CATEGORY}")


def _fail(where: Any, value: str, expected: str) -> None:
    raise InvalidInputError(
        f"The model file holds a malformed {type(where).__name__}: {value}; expected {expected}. "
        "Predicting with it could read or write memory or files it should not; load it with trusted=True "
        "only if you trust its author.",
        field="model", value=value, expected=expected)


def check_links(where: str, children: np.ndarray, n: int) -> None:
    """InvalidInputError unless the internal-node ``children`` of a tree with ``n`` internal nodes (root 0) form a
    tree: each in 1..n-1 and each at most once, so every walk from the root ends (no cycle) inside the arrays.

    For the compiled predictors of LightGBM and XGBoost, which follow their files' child indices unchecked.
    """
    children = np.asarray(children, dtype=np.int64)
    if children.size and (children.min() < 1 or children.max() >= n):
        _fail_named(where, "a child index out of range", f"child indices in 1..{n - 1}")
    if children.size and np.bincount(children).max() > 1:
        _fail_named(where, "a node that is the child of two nodes (a cycle)", "a tree")


def check_indices(where: str, name: str, values: np.ndarray, bound: int) -> None:
    """InvalidInputError unless every value is in 0..bound-1."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() >= bound):
        _fail_named(where, f"a {name} out of range", f"{name}s in 0..{bound - 1}")


def _fail_named(where: str, value: str, expected: str) -> None:
    raise InvalidInputError(
        f"The model file holds a malformed {where}: {value}; expected {expected}. Predicting with it could read or "
        "write memory it should not; load it with trusted=True only if you trust its author.",
        field="model", value=value, expected=expected)
