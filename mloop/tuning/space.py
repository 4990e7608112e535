"""A search space as plain data: validated once, then drawn from by an Optuna trial.

Each key of the space names a parameter; its value says how to draw it:

=============================  =====================================================
``("float", low, high)``       a float, uniform in [low, high]
``("float", low, high, step)``  a float on the grid low, low + step, ... high
``("log", low, high)``         a float, log-uniform in [low, high] (low > 0)
``("int", low, high)``         an int in [low, high]; ``("int", low, high, step)``
``("logint", low, high)``      an int, log-uniform in [low, high] (low >= 1)
``["a", "b", 3]``              one of the listed values (str, int, float, bool, None)
a str, int, float or bool      a fixed value: passed to the objective, not searched
=============================  =====================================================

YAML has no tuples, so a file spells a range as a mapping and a choice as a list::

    lr: {type: log, low: 1.0e-4, high: 0.1}
    depth: {type: int, low: 2, high: 10}
    kind: [gbm, linear]

>>> space = parse_space({"lr": ("log", 1e-4, 1e-1), "depth": ("int", 2, 10), "kind": ["a", "b"]})
>>> space["depth"]
Dimension(name='depth', kind='int', low=2, high=10, step=None, choices=())
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError

_RANGES = ("float", "log", "int", "logint")
_FORMS = ("('float'|'log'|'int'|'logint', low, high[, step]), a list of choices, "
          "or a fixed str/int/float/bool")
_CHOICE_TYPES = (str, int, float, bool, type(None))
_MAX_CHOICES = 10_000


@dataclass(frozen=True, slots=True)
class Dimension:
    """One parameter of a space: a range (``kind`` in float/log/int/logint), ``choice`` or ``fixed``."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def draw(self, trial: Any) -> Any:
        """The value of this parameter for an Optuna ``trial``."""
        if self.kind == "fixed":
            return self.choices[0]
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.kind == "logint")
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.kind == "log")


def parse_space(space: dict[str, Any] | str | Path | None) -> dict[str, Dimension]:
    """Validate ``space`` (a dict, or the path of a YAML file holding one) into its dimensions."""
    if space is None:
        return {}
    if isinstance(space, str | Path):
        space = _read_yaml(Path(space))
    if not isinstance(space, dict):
        raise InvalidInputError(field="space", value=_short(space), expected="a dict of parameter name: definition")
    dims = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name or len(name) > 250:
            raise InvalidInputError(field="space", value=name, expected="parameter names as non-empty strings")
        dims[name] = _dimension(name, spec)
    return dims


def _read_yaml(path: Path) -> Any:
    import yaml

    if not path.is_file():
        raise InvalidInputError(field="space", value=str(path), expected="an existing YAML file")
    if path.stat().st_size > 1 << 20:
        raise InvalidInputError(field="space", value=str(path), expected="a YAML file under 1 MB")
    try:
        return yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"space: {path} is not valid YAML ({exc}).", field="space") from exc


def _dimension(name: str, spec: Any) -> Dimension:
    field = f"space.{name}"
    if isinstance(spec, dict):
        spec = _from_mapping(field, spec)
    if isinstance(spec, list):
        return _choice(name, spec)
    if isinstance(spec, tuple):
        return _range(name, spec)
    if isinstance(spec, str | int | float | bool):
        return Dimension(name, "fixed", choices=(spec,))
    raise InvalidInputError(field=field, value=_short(spec), expected=_FORMS)


def _from_mapping(field: str, spec: dict[str, Any]) -> tuple[Any, ...] | list[Any]:
    """The YAML spelling ``{type: log, low: .., high: .., step: ..}`` or ``{choices: [...]}`` as the tuple/list."""
    unknown = set(spec) - {"type", "low", "high", "step", "choices"}
    if unknown:
        raise InvalidInputError(field=field, value=sorted(unknown)[0],
                                expected="only the keys type, low, high, step, choices")
    if "choices" in spec:
        if not isinstance(spec["choices"], list):
            raise InvalidInputError(field=f"{field}.choices", value=_short(spec["choices"]), expected="a list")
        return list(spec["choices"])
    for key in ("type", "low", "high"):
        if key not in spec:
            raise InvalidInputError(field=f"{field}.{key}", value=None, expected=f"the key '{key}' ({_FORMS})")
    bounds = (spec["low"], spec["high"]) + ((spec["step"],) if spec.get("step") is not None else ())
    return (spec["type"], *bounds)


def _choice(name: str, values: list[Any]) -> Dimension:
    field = f"space.{name}"
    if not values or len(values) > _MAX_CHOICES:
        raise InvalidInputError(field=field, value=_short(values), expected=f"a list of 1 to {_MAX_CHOICES} choices")
    for value in values:
        if not isinstance(value, _CHOICE_TYPES) or (isinstance(value, float) and not math.isfinite(value)):
            raise InvalidInputError(field=field, value=_short(value),
                                    expected="choices that are str, int, finite float, bool or None")
    if len({(type(v), v) for v in values}) != len(values):
        raise InvalidInputError(field=field, value=_short(values), expected="choices without repeats")
    return Dimension(name, "choice", choices=tuple(values))


def _range(name: str, spec: tuple[Any, ...]) -> Dimension:
    field = f"space.{name}"
    if len(spec) not in (3, 4) or spec[0] not in _RANGES:
        raise InvalidInputError(field=field, value=_short(spec), expected=_FORMS)
    kind = spec[0]
    integral = kind in ("int", "logint")
    low, high = (_number(f"{field}.{part}", v, integral) for part, v in zip(("low", "high"), spec[1:3], strict=True))
    step = _number(f"{field}.step", spec[3], integral) if len(spec) == 4 else None
    if low > high:
        raise InvalidInputError(field=f"{field}.high", value=high, expected=f"a number >= low ({low})")
    if kind in ("log", "logint") and low <= 0:
        raise InvalidInputError(field=f"{field}.low", value=low, expected="a number > 0 for a log scale")
    if step is not None and (step <= 0 or kind in ("log", "logint")):
        raise InvalidInputError(field=f"{field}.step", value=step,
                                expected="a step > 0, and no step on a log scale")
    return Dimension(name, kind, low, high, step)


def _number(field: str, value: Any, integral: bool) -> float | int:
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float) and integral and value.is_integer():
        value = int(value)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (integral and not isinstance(value, int)):
        raise InvalidInputError(field=field, value=_short(value),
                                expected="a whole number" if integral else "a finite number")
    return value


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 200 else text[:200] + "..."
