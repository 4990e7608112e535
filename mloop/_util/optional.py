"""Optional heavy dependencies, imported on demand with a message that names the extra."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from mloop.errors import MissingDependencyError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or say which ``pip install 'mloop[extra]'`` provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"The optional package '{module.split('.')[0]}' is needed here but is not installed; "
            f"install it with: pip install 'mloop[{extra}]'"
        ) from exc


# A package of scikit-learn whose import imports torch (when torch is installed); see import_skops().
_TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


def import_skops() -> ModuleType:
    """``skops.io``, imported without importing torch.

    At import, skops lists the estimators it trusts with sklearn's ``all_estimators``, which imports every
    package of sklearn to walk it, ``externals.array_api_compat.torch`` included, and that one imports torch:
    2-3 s in every fresh process that saves or loads a model (a server's cold start, a flow's register step).
    No estimator lives under ``externals``, so the walk loses nothing when that package is a stand-in for the
    duration of the import; the stand-in is removed afterwards, so array-API code imports the real one.

    >>> import_skops().__name__
    'skops.io'
    """
    if "skops.io" in sys.modules or "torch" in sys.modules or _TORCH_SHIM in sys.modules:
        return require("skops.io", extra="sklearn")
    stand_in = ModuleType(_TORCH_SHIM)
    sys.modules[_TORCH_SHIM] = stand_in
    try:
        return require("skops.io", extra="sklearn")
    finally:
        if sys.modules.get(_TORCH_SHIM) is stand_in:
            del sys.modules[_TORCH_SHIM]
