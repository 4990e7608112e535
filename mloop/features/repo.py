"""Loading a feature repository: a Python file (``features.py``) or a folder of them, whose module-level
definitions (entities, views, services) are collected."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from mloop.errors import InvalidInputError, UserCodeError
from mloop.features.definitions import Definition

__all__ = ["load_definitions"]


def load_definitions(path: str | Path) -> list[Definition]:
    """Every Definition declared at module level in ``path`` (a .py file, or each .py file of a folder)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        if not files:
            raise InvalidInputError(field="repo", value=str(path), expected="a folder with a features.py file")
    elif path.is_file() and path.suffix == ".py":
        files = [path]
    else:
        raise InvalidInputError(field="repo", value=str(path), expected="a features.py file or a folder of .py files")
    found: dict[tuple[str, str], Definition] = {}
    for file in files:
        for d in _module_definitions(file):
            key = (d.kind, d.name)
            if key in found and found[key] is not d:
                raise InvalidInputError(f"{d.kind} '{d.name}' is defined twice (again in {file.name}); "
                                        "names must be unique per kind.", field=d.name)
            found[key] = d
    return list(found.values())


def _module_definitions(file: Path) -> list[Definition]:
    name = f"mloop_feature_repo_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserCodeError(f"Loading the feature repository {file} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(file.parent))
    return [v for v in vars(module).values() if isinstance(v, Definition)]
