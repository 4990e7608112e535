"""What a step's result depends on in code: its source and the user code it reaches.

``@cache`` keys on this. The step's own source is not enough: a step calling ``features(df)`` defined above
it in the flow file, a method of the flow, or a module beside the flow file must miss the cache when that
code changes. Installed packages (site-packages) and the standard library are not followed: their
versions change with the environment, not with the flow.

>>> def helper(x):
...     return x + 1
>>> def step(self):
...     self.y = helper(1)
>>> a = code_fingerprint(step)
>>> def helper(x):
...     return x + 2
>>> a != code_fingerprint(step)
True
"""

from __future__ import annotations

import hashlib
import inspect
import sysconfig
import types
from pathlib import Path
from typing import Any

_SCALARS = (int, float, str, bytes, bool, type(None))
# Not the flow's code: the standard library, installed packages, and mloop itself (even when installed editable).
_INSTALLED = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
) + (str(Path(__file__).resolve().parent.parent) + "/",)


def code_fingerprint(func: Any, owner: type | None = None, steps: frozenset[str] = frozenset()) -> str:
    """sha256 of ``func``'s source and of the user functions, classes, modules and constants it names.

    ``owner`` is the flow class: its methods and attributes named by ``func`` count too, except ``steps``
    (``self.next(self.train)`` names the next step, whose code does not shape this one's result).
    """
    walker = _Walker(owner, steps)
    walker.add_function(func)
    return walker.digest.hexdigest()


class _Walker:
    def __init__(self, owner: type | None, steps: frozenset[str]) -> None:
        self.owner = owner
        self.steps = steps
        self.digest = hashlib.sha256()
        self.seen: set[int] = set()

    def _mark(self, obj: Any) -> bool:
        """True the first time ``obj`` is met."""
        if id(obj) in self.seen:
            return False
        self.seen.add(id(obj))
        return True

    def add_function(self, func: Any) -> None:
        func = inspect.unwrap(func)
        if not isinstance(func, types.FunctionType) or not self._mark(func):
            return
        self._feed("function", func.__qualname__, _source(func))
        for name in sorted(_names(func.__code__)):
            if name in func.__globals__:
                self.add_value(name, func.__globals__[name])
            elif self.owner is not None and name in vars(self.owner) and name not in self.steps:
                self.add_value(name, vars(self.owner)[name])

    def add_value(self, name: str, value: Any) -> None:
        if isinstance(value, _SCALARS):
            self._feed("constant", name, repr(value))
        elif isinstance(value, (staticmethod, classmethod)):
            self.add_function(value.__func__)
        elif isinstance(value, property):
            for accessor in (value.fget, value.fset, value.fdel):
                self.add_function(accessor)
        elif isinstance(value, types.FunctionType):
            if _is_user_code(value):
                self.add_function(value)
        elif isinstance(value, type):
            if _is_user_code(value) and self._mark(value):
                self._feed("class", value.__qualname__, _source(value))
                for member in vars(value).values():
                    if isinstance(member, (types.FunctionType, staticmethod, classmethod, property)):
                        self.add_value(name, member)
        elif isinstance(value, types.ModuleType):
            file = getattr(value, "__file__", None)
            if file and _is_user_code(value) and self._mark(value):
                self._feed("module", value.__name__, Path(file).read_bytes())

    def _feed(self, kind: str, name: str, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        self.digest.update(f"{kind}\0{name}\0{len(data)}\0".encode())
        self.digest.update(data)


def _names(code: types.CodeType) -> set[str]:
    """Global and attribute names used by ``code`` and the functions, lambdas and comprehensions inside it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _is_user_code(obj: Any) -> bool:
    if getattr(obj, "__module__", None) == "builtins" or isinstance(obj, types.BuiltinFunctionType):
        return False
    try:
        file = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except (TypeError, OSError):
        return False
    resolved = str(Path(file).resolve())
    return not resolved.startswith(_INSTALLED)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # defined at a prompt: the bytecode still changes with the code
        code = getattr(obj, "__code__", None)
        return repr((code.co_code, code.co_consts)) if code is not None else obj.__qualname__
