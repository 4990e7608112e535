"""Defining flows: ``FlowSpec`` with ``@step`` methods, typed ``Parameter``s and step decorators.

>>> from mloop.flows import FlowSpec, Parameter, step
>>> class Hello(FlowSpec):
...     name = Parameter(str, default="world")
...     @step
...     def start(self):
...         self.greeting = f"hello {self.name}"
...         self.next(self.end)
...     @step
...     def end(self):
...         pass
>>> sorted(Hello._steps())
['end', 'start']
>>> Hello._parameters()["name"].parse("mloop")
'mloop'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mloop.errors import InvalidInputError

F = TypeVar("F", bound=Callable[..., Any])

STEP_ATTR = "_mloop_step"
DECOS_ATTR = "_mloop_decorators"
_MISSING = object()


# ---------------------------------------------------------------- parameters
@dataclass
class Parameter:
    """A typed flow input with a default, settable from the CLI as ``--name value`` and validated.

    ``Parameter(float, default=0.1, help="learning rate", min=0, max=1)``; ``choices=[...]`` for enums.
    """

    type: type = str
    default: Any = _MISSING
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: list[Any] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        # Parameter("seed", default=1) reads like Metaflow's Parameter(name, ...): say so, not AttributeError later
        if not isinstance(self.type, type):
            raise InvalidInputError(
                f"Parameter's first argument is its type, got {self.type!r}; the attribute name is the "
                f"parameter's name: seed = Parameter(int, default=1)",
                field="Parameter.type", value=self.type, expected="a type: int, float, bool, str, list or dict")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance.__getattr__(self.name)  # the run's value, read like any artifact

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def parse(self, raw: Any) -> Any:
        """Convert a CLI string (or a Python value) to the parameter's type and check its bounds."""
        if raw is None and self.default is None:
            return None  # a parameter whose default is None may be None (and a resume keeps it so)
        expected = self._expected()
        try:
            value = _convert(raw, self.type)
        except (TypeError, ValueError):
            raise InvalidInputError(field=f"--{self.name}", value=raw, expected=expected) from None
        if self.type in (int, float) and isinstance(value, int | float) and (
                (self.min is not None and value < self.min) or (self.max is not None and value > self.max)
                or (isinstance(value, float) and math.isnan(value))):
            raise InvalidInputError(field=f"--{self.name}", value=raw, expected=expected)
        if self.choices is not None and value not in self.choices:
            raise InvalidInputError(field=f"--{self.name}", value=raw, expected=expected)
        return value

    def _expected(self) -> str:
        if self.choices is not None:
            text = f"one of {self.choices}"
        else:
            text = _TYPE_WORDS.get(self.type, f"a value of type {self.type.__name__}")
        if self.min is not None or self.max is not None:
            low = self.min if self.min is not None else "-inf"
            text += f" in [{low}, {self.max if self.max is not None else 'inf'}]"
        return text


# How a message names each type ("expected an integer"): its __name__ reads badly ("a int", "a dict").
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               list: "a list (a JSON list on the command line)", dict: "a dict (a JSON object on the command line)"}


def _convert(raw: Any, kind: type) -> Any:
    if raw is None or (isinstance(raw, bool) and kind is not bool):
        raise ValueError(raw)  # str(None) would be "None" and int(True) 1: never what was meant
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if kind is int and isinstance(raw, float) and not raw.is_integer():
        raise ValueError(raw)
    if kind in (list, dict):
        if isinstance(raw, str):
            import json

            raw = json.loads(raw)
        if kind is list and (isinstance(raw, tuple | range) or hasattr(raw, "tolist")):
            raw = list(raw) if isinstance(raw, tuple | range) else raw.tolist()  # a tuple, a range, an array
        if not isinstance(raw, kind):
            raise ValueError(raw)  # list({"a": 1}) would silently keep only the keys
        return raw
    return raw if isinstance(raw, kind) and not isinstance(raw, bool) else kind(raw)


# ---------------------------------------------------------------- decorators
def step(func: F) -> F:
    """Mark a method as a step of its flow; it must end by calling ``self.next(...)`` unless it is ``end``."""
    if not callable(func):
        raise InvalidInputError(field="step", value=func, expected="a method of a FlowSpec")
    setattr(func, STEP_ATTR, True)
    if not hasattr(func, DECOS_ATTR):
        setattr(func, DECOS_ATTR, {})
    return func


def _decorator(kind: str, **options: Any) -> Callable[[F], F]:
    def attach(func: F) -> F:
        decos = dict(getattr(func, DECOS_ATTR, {}))
        decos[kind] = options
        setattr(func, DECOS_ATTR, decos)
        return func

    return attach


def _positive(name: str, value: Any, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise InvalidInputError(field=name, value=value, expected="a non-negative number" if allow_zero
                                else "a positive number")
    return float(value)


def retry(times: int = 3, backoff: float = 0.0) -> Callable[[F], F]:
    """Run a failing task again up to ``times`` more times, waiting ``backoff * 2**attempt`` seconds between."""
    if not isinstance(times, int) or isinstance(times, bool) or times < 0:
        raise InvalidInputError(field="retry.times", value=times, expected="a whole number >= 0")
    return _decorator("retry", times=times, backoff=_positive("retry.backoff", backoff, allow_zero=True))


def timeout(seconds: float) -> Callable[[F], F]:
    """Kill a task that runs longer than ``seconds`` (a failure, retried when ``@retry`` is present)."""
    return _decorator("timeout", seconds=_positive("timeout.seconds", seconds))


def resources(cpu: float = 1, memory: int | None = None, gpu: int = 0) -> Callable[[F], F]:
    """What one task needs: ``cpu`` cores, ``memory`` in MB, ``gpu`` devices; the executors schedule by it."""
    _positive("resources.cpu", cpu)
    if memory is not None:
        _positive("resources.memory", memory)
    return _decorator("resources", cpu=cpu, memory=memory, gpu=gpu)


def catch(var: Any = "exception") -> Any:
    """On failure (after retries) record the exception as artifact ``var`` and continue the flow.

    ``@catch`` alone records it as ``exception``."""
    if callable(var):  # bare @catch
        return _decorator("catch", var="exception")(var)
    if not isinstance(var, str) or not var.isidentifier() or var.startswith("_") or var in RESERVED_ARTIFACTS:
        raise InvalidInputError(field="catch.var", value=var,
                                expected="an artifact name: a Python identifier, not starting with _, "
                                f"not one of {sorted(RESERVED_ARTIFACTS)}")
    return _decorator("catch", var=var)


def cache(func: F | None = None) -> Any:
    """Skip the step when its code, parameters and input artifacts match a previous successful task."""
    if func is not None:
        return _decorator("cache")(func)
    return _decorator("cache")


def schedule(cron: str) -> Callable[[type], type]:
    """Declare when ``mloop scheduler`` starts this flow: ``@schedule(cron="*/5 * * * *")`` on the class."""
    from mloop.flows.cron import CronSchedule

    parsed = CronSchedule.parse(cron)

    def attach(cls: type) -> type:
        cls._mloop_schedule = parsed  # type: ignore[attr-defined]
        return cls

    return attach


def decorators_of(func: Callable[..., Any]) -> dict[str, dict[str, Any]]:
    return dict(getattr(func, DECOS_ATTR, {}))


# ---------------------------------------------------------------- the flow
# Set by mloop on foreach tasks; neither an artifact nor a parameter may take these names.
RESERVED_ARTIFACTS = frozenset({"input", "index"})

@dataclass
class Transition:
    """What a task chose as next: step names, a foreach artifact, or a switch's value."""

    steps: list[str] = field(default_factory=list)
    foreach: str | None = None
    condition: str | None = None


class FlowSpec:
    """Base class of a flow: methods decorated with ``@step``; ``start`` runs first and ``end`` last.

    Every attribute assigned on ``self`` inside a step becomes an artifact that later steps read back.
    """

    _mloop_schedule: Any = None

    def __init__(self) -> None:
        object.__setattr__(self, "_transition", None)
        object.__setattr__(self, "_assigned", set())
        object.__setattr__(self, "_loader", None)
        object.__setattr__(self, "input", None)
        object.__setattr__(self, "index", None)

    # Artifacts: reads fall back to the task's input artifacts, writes are recorded.
    def __getattr__(self, name: str) -> Any:
        loader = self.__dict__.get("_loader")
        if loader is not None and not name.startswith("__"):
            found = loader(name)
            if found is not _MISSING:
                object.__setattr__(self, name, found)
                return found
        raise AttributeError(f"'{type(self).__name__}' has no artifact or attribute '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in RESERVED_ARTIFACTS:
            raise AttributeError(f"'{name}' is set by mloop for foreach tasks; pick another artifact name")
        clash = shadowing(type(self), name)
        if clash:
            raise AttributeError(f"artifact '{name}' has the name of {clash}, which would hide it from later steps; "
                                 "pick another artifact name")
        object.__setattr__(self, name, value)
        self._assigned.add(name)

    def next(self, *steps: Any, foreach: str | None = None, condition: str | None = None) -> None:
        """Name what follows: ``self.next(self.a)``, ``self.next(self.a, self.b)`` (branches),
        ``self.next(self.train, foreach="items")`` or ``self.next({"x": self.a, "y": self.b}, condition="kind")``."""
        if self._transition is not None:
            raise InvalidInputError("self.next() was called twice in one step", field="next")
        if condition is not None:
            if len(steps) != 1 or not isinstance(steps[0], dict):
                raise InvalidInputError(field="next", value=steps,
                                        expected="one dict {value: self.step} with condition=")
            value = getattr(self, condition)
            try:
                target = steps[0].get(value, _MISSING)
            except TypeError:  # an unhashable value (a list, a dict) cannot be one of the keys
                target = _MISSING
            if target is _MISSING:
                raise InvalidInputError(field=f"condition {condition}", value=value,
                                        expected=f"one of {sorted(map(str, steps[0]))}")
            names = [_step_name(target)]
        else:
            names = [_step_name(s) for s in steps]
        if foreach is not None:
            _check_foreach_items(foreach, getattr(self, foreach))
        object.__setattr__(self, "_transition", Transition(names, foreach, condition))

    def merge_artifacts(self, inputs: Any, exclude: list[str] | None = None) -> None:
        """In a join: copy every artifact the inputs agree on (or that only some have) onto this task."""
        inputs.merge_into(self, set(exclude or []))

    @classmethod
    def _steps(cls) -> dict[str, Callable[..., Any]]:
        found = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if callable(value) and getattr(value, STEP_ATTR, False):
                    found[name] = value
        return found

    @classmethod
    def _parameters(cls) -> dict[str, Parameter]:
        found = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Parameter):
                    found[name] = value
        return found

    @classmethod
    def resolve_params(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Every parameter's value: given (parsed and validated) or its default; unknown names are errors."""
        if not isinstance(given, Mapping):
            raise InvalidInputError(field="params", value=given, expected="a dict of parameter name to value")
        params = cls._parameters()
        unknown = sorted(set(given) - set(params))
        if unknown:
            raise InvalidInputError(field=f"--{unknown[0]}", value=given[unknown[0]],
                                    expected=f"one of the flow's parameters {sorted(params)}")
        values = {}
        for name, param in params.items():
            if name in given:
                values[name] = param.parse(given[name])
            elif param.required:
                raise InvalidInputError(field=f"--{name}", value=None, expected=f"a value ({param._expected()})")
            else:
                values[name] = param.default
        return values


def shadowing(cls: type, name: str) -> str | None:
    """What of the flow class ``cls`` an artifact ``name`` would be hidden by ("a step of Train"), or None.

    Later steps read ``self.<name>`` from the class first, so such an artifact would read back as the step,
    method, parameter or class attribute (``self.features`` -> the method)."""
    if not hasattr(cls, name):
        return None
    value = getattr(cls, name)
    what = ("a parameter" if isinstance(value, Parameter) else "a step" if getattr(value, STEP_ATTR, False)
            else "a method" if callable(value) else "a class attribute")
    return f"{what} of {cls.__name__}"


def _check_foreach_items(name: str, items: Any) -> None:
    """A foreach fans out over something indexable by position, with at least one item."""
    kind = type(items).__name__
    try:
        sized = len(items) >= 0 and hasattr(items, "__getitem__")
    except TypeError:  # e.g. a 0-d array
        sized = False
    if not sized or isinstance(items, Mapping | set | frozenset | str | bytes | bytearray) or hasattr(items, "iloc"):
        hint = (" (for a dict, e.g. list(d.items()))" if isinstance(items, Mapping) else
                " (for a pandas object, e.g. .tolist() or .to_dict('records'))" if hasattr(items, "iloc") else
                " (e.g. list(...) of it)" if hasattr(items, "__iter__") and not isinstance(items, str | bytes) else "")
        raise InvalidInputError(field=f"foreach {name}", value=kind, expected=f"a list, tuple or array{hint}")
    if len(items) == 0:
        raise InvalidInputError(field=f"foreach {name}", value=f"an empty {kind}",
                                expected="at least one item to fan out over")


def _step_name(target: Any) -> str:
    name = getattr(target, "__name__", None)
    if not callable(target) or not getattr(target, STEP_ATTR, False) or not name:
        raise InvalidInputError(field="next", value=target, expected="a step such as self.train")
    return str(name)
