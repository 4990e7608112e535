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

Constants count by content, containers too (sets and dicts in an order that is the same in every process):

>>> CONFIG = {"k": 10, "tags": {"a", "b"}}
>>> def step(self):
...     self.k = CONFIG["k"]
>>> a = code_fingerprint(step)
>>> CONFIG["k"] = 11
>>> a != code_fingerprint(step)
True
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import hashlib
import inspect
import re
import sys
import sysconfig
import types
from pathlib import Path, PurePath
from typing import Any

_SCALARS = (int, float, str, bytes, bool, type(None))
_CONTAINERS = (list, tuple, dict, set, frozenset)
_CODE = (types.FunctionType, type, types.ModuleType)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")  # default reprs show a memory address: different in every process
_SKIPPED = "?"
# Values whose repr is their whole content, the same in every process (an enum member, a Decimal, a date, a path).
_STABLE_REPR = (enum.Enum, decimal.Decimal, fractions.Fraction, complex, datetime.date, datetime.timedelta,
                PurePath)
# Not the flow's code: the standard library, installed packages, and mloop itself (even when installed editable).
_INSTALLED = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
) + (str(Path(__file__).resolve().parent.parent) + "/",)


def file_digest(path: str | Path) -> str:
    """sha256 of a code file's bytes: what a flow run records as ``mloop.flow.digest``, and what automation's
    code-change trigger compares with it."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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
        if isinstance(value, (staticmethod, classmethod)):
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
            if _is_user_code(value) and self._mark(value):
                self.add_module(value)
        else:
            content = self._content(value, frozenset())
            if content != _SKIPPED:  # a value without a stable content does not count
                self._feed("constant", name, content)

    def add_module(self, module: types.ModuleType) -> None:
        file = getattr(module, "__file__", None)
        if file:  # a namespace package has none, only submodules
            self._feed("module", module.__name__, Path(file).read_bytes())
        # `import pkg.sub` binds only `pkg`: the step reaches pkg.sub.g through the attributes of the package
        # (and a local module reaches the local modules it imports the same way).
        for attr, member in sorted(vars(module).items(), key=lambda item: item[0]):
            if isinstance(member, types.ModuleType):
                self.add_value(attr, member)

    def _content(self, value: Any, enclosing: frozenset[int]) -> str:
        """Text that changes with ``value``'s content and is the same in every process that builds it."""
        if isinstance(value, _SCALARS):
            return repr(value)
        if isinstance(value, _CONTAINERS):
            if id(value) in enclosing:  # a container holding itself
                return "..."
            inner = enclosing | {id(value)}
            if isinstance(value, dict):
                parts = sorted(f"{self._content(k, inner)}: {self._content(v, inner)}" for k, v in value.items())
            elif isinstance(value, (set, frozenset)):
                parts = sorted(self._content(item, inner) for item in value)
            else:
                parts = [self._content(item, inner) for item in value]
            return f"{type(value).__name__}[{', '.join(parts)}]"
        if isinstance(value, _CODE):  # e.g. a list of transforms: their code counts, their address must not
            label = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value.__name__)}"
            self.add_value(label, value)
            return label
        if _is_array(value):  # numpy's repr elides the middle of a large array: hash every byte
            digest = hashlib.sha256(value.tobytes()).hexdigest()
            return f"array[{value.dtype}, {value.shape}, {digest}]"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return f"{type(value).__qualname__}{self._content(fields, enclosing)}"
        if isinstance(value, _STABLE_REPR):
            return _stable_repr(value)
        return _SKIPPED  # any other repr may hold a set (ordered differently in each process) or an address

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


def _is_array(value: Any) -> bool:
    numpy = sys.modules.get("numpy")  # never imported here: a flow that uses arrays has imported numpy
    return numpy is not None and isinstance(value, numpy.ndarray)


def _stable_repr(value: Any) -> str:
    """``repr(value)``, or a placeholder when it would differ between processes or cannot be computed."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not fail the run: the value just does not count
        return _SKIPPED
    return _SKIPPED if _ADDRESS.search(text) else text


def _is_user_code(obj: Any) -> bool:
    if getattr(obj, "__module__", None) == "builtins" or isinstance(obj, types.BuiltinFunctionType):
        return False
    try:
        file = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except (TypeError, OSError):
        # a namespace package (a folder without __init__.py) has no file, only folders
        folders = list(getattr(obj, "__path__", None) or []) if isinstance(obj, types.ModuleType) else []
        return bool(folders) and all(_is_local(folder) for folder in folders)
    return _is_local(file)


def _is_local(file: str) -> bool:
    return not str(Path(file).resolve()).startswith(_INSTALLED)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # defined at a prompt: the bytecode still changes with the code
        code = getattr(obj, "__code__", None)
        return repr((code.co_code, code.co_consts)) if code is not None else obj.__qualname__
