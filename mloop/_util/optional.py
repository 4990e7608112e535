"""Optional heavy dependencies, imported on demand with a message that names the extra."""

from __future__ import annotations

import importlib
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
