"""What a model file may construct when it loads without ``trusted=True``: a list of names, never a prefix.

A module prefix such as ``numpy.`` also admits functions that run code
(``numpy.testing._private.utils.runstring`` calls ``exec``), and a scikit-learn Pipeline of
FunctionTransformers calls whatever functions its file names. So every type and function a
model file refers to must be named: here, by the user (``trusted=["mypkg.MyTransformer"]``),
or the whole model is trusted (``trusted=True``: "I trust this file's author").

What is trusted without asking has two parts:

* skops' built-in list, which skops always applies and mloop keeps: every scikit-learn
  estimator that ``sklearn.utils.all_estimators()`` finds (plain parameter holders whose
  callables, if any, are separate entries of the file and checked on their own); gradient
  boosting's loss and link objects; NumPy and ``scipy.special`` ufuncs (element-wise math,
  no side effects); NumPy arrays (read with ``allow_pickle=False``), dtypes, random states and
  bit generators; ``int``, ``float``, ``str``, ``bool``, ``list``, ``set``, ``tuple``, ``dict``,
  ``slice``, ``bytes``. ``builtin_names()`` lists it.
* ``EXTRA`` below: the few names that realistic pipelines hold and skops leaves out, each
  with the reason it cannot run code.

Left out on purpose: the KDTree and BallTree of nearest-neighbour models and their distance
metrics (their index arrays are followed unchecked, and mloop does not check them yet), and
kernels of Gaussian processes. Such models load with ``trusted=[their names]`` or ``True``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from mloop.errors import InvalidInputError

__all__ = ["EXTRA", "PARTIAL_TARGETS", "Trust", "builtin_names", "full", "normalize", "refused", "trusted_names"]

# A load's trust: True (the whole model), or the names the user added (empty: only the lists here).
Trust = bool | frozenset[str]

EXTRA: dict[str, str] = {
    "numpy.dtype": "a dtype descriptor, rebuilt from an empty array read with allow_pickle=False",
    "builtins.object": "the type object itself (a dtype or a column selector's dtype_include); "
                       "it is never called",
    "functools.partial": "only the wrapper, and only around a function in PARTIAL_TARGETS (or one the user "
                         "trusts by name; checked after loading, before anything is called): its arguments are "
                         "entries of their own and must be trusted themselves",
    "sklearn.utils.validation.check_array": "validates and converts an array; HistGradientBoosting "
                                            "keeps it (in a partial) to preprocess categorical columns",
    "sklearn.utils._bunch.Bunch": "a dict with attribute access (the named estimators of Voting and "
                                  "Stacking models); its values are entries checked on their own",
    "sklearn.compose._column_transformer.make_column_selector": "holds a regex and dtype lists that "
                                                                 "pick columns by name or type",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer": "learning-rate state (arrays and "
                                                                   "floats) of MLP models",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer": "learning-rate state (arrays and "
                                                                  "floats) of MLP models",
    "sklearn.calibration._CalibratedClassifier": "CalibratedClassifierCV's pair of a fitted estimator and "
                                                 "its calibrators (entries checked on their own)",
    "sklearn.calibration._SigmoidCalibration": "two floats of Platt scaling (CalibratedClassifierCV)",
    "sklearn.calibration._TemperatureScaling": "one float of temperature scaling (CalibratedClassifierCV)",
    "sklearn.tree._tree.Tree": "node arrays of decision trees and forests; their indices are "
                               "bounds-checked after loading (see _structure.py)",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": "node arrays of "
        "HistGradientBoosting; their indices are bounds-checked after loading (see _structure.py)",
}

# The only functions a functools.partial may wrap without the user naming them: the ones scikit-learn itself
# keeps in partials of fitted models (HistGradientBoosting's preprocessing of categorical columns).
PARTIAL_TARGETS: frozenset[str] = frozenset({"sklearn.utils.validation.check_array"})

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


@functools.cache
def builtin_names() -> frozenset[str]:
    """The names skops trusts by itself (the first part of the module docstring)."""
    from mloop._util.optional import import_skops

    import_skops()  # computes the list at import, with torch kept out of the estimator walk
    from skops.io import _trusted_types as skops_lists

    names: list[str] = []
    for attr in ("PRIMITIVE_TYPE_NAMES", "CONTAINER_TYPE_NAMES", "SKLEARN_ESTIMATOR_TYPE_NAMES",
                 "SKLEARN_INTERNAL_TYPE_NAMES", "SCIPY_UFUNC_TYPE_NAMES", "NUMPY_UFUNC_TYPE_NAMES",
                 "NUMPY_DTYPE_TYPE_NAMES", "NUMPY_RANDOM_BIT_GENERATOR_TYPE_NAMES"):
        names.extend(getattr(skops_lists, attr, ()))
    return frozenset(names)


def trusted_names(user: Iterable[str] = ()) -> frozenset[str]:
    """Everything a model may construct without ``trusted=True``: skops' list, ``EXTRA`` and ``user``."""
    return builtin_names() | EXTRA.keys() | frozenset(user)


def normalize(trusted: Any) -> Trust:
    """``trusted`` as given to ``load_model``: True, False, or a list of dotted names to trust as well."""
    if isinstance(trusted, bool):
        return trusted if trusted else frozenset()
    if isinstance(trusted, str) or not isinstance(trusted, Iterable):
        raise InvalidInputError(field="trusted", value=trusted,
                                expected="True, False, or a list of type or function names such as "
                                         "['mypkg.transformers.MyScaler']")
    names = list(trusted)
    bad = [n for n in names if not isinstance(n, str) or not _NAME.fullmatch(n)]
    if bad:
        raise InvalidInputError(field="trusted", value=bad,
                                expected="full dotted names of types or functions (module.Name)")
    return frozenset(names)


def full(trusted: Trust) -> bool:
    """Whether the user trusts the whole model (not only some names)."""
    return trusted is True


def refused(found: Iterable[str], trusted: Trust) -> list[str]:
    """The names in ``found`` (skops' untrusted set) that neither ``EXTRA`` nor the user trusts."""
    if full(trusted):
        return []
    user = trusted if isinstance(trusted, frozenset) else frozenset()
    return sorted(n for n in found if n not in EXTRA and n not in user)


def require_full(trusted: Trust, flavor: str, why: str) -> None:
    """InvalidInputError unless the whole model is trusted: a format that is code cannot be trusted by name."""
    if not full(trusted):
        raise InvalidInputError(
            f"A {flavor} model {why} Load it only from an author you trust, with trusted=True "
            "(load_model(uri, trusted=True), mloop serve --trusted); trusting type names is not enough here.",
            field="trusted", value=sorted(trusted) if isinstance(trusted, frozenset) else trusted,
            expected="True (you trust the model's author)")
