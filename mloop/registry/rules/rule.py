"""A model selection rule (Uber Gallery's GIVEN / WHEN / ENVIRONMENT / MODEL_SELECTION), in YAML or Python.

.. code-block:: yaml

    name: eta-champion
    given: name = 'eta' and tags.city = 'sf'        # which models and versions are candidates
    when: metrics.mae <= 5 and metrics.bias between -0.1 and 0.1
    environment: production                          # and/or  alias: champion
    select: [metrics.mae asc, newest]                # ordering with tie-breaks

Everything is parsed at construction, so a bad rule fails before it runs.

>>> rule = Rule.from_yaml("name: r\\nwhen: metrics.mae < 3\\nalias: champion\\nselect: metrics.mae asc, newest")
>>> [(k.field, k.descending) for k in rule.order]
[('metrics.mae', False), ('created', True)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from mloop._util.names import check_name
from mloop.errors import InvalidInputError
from mloop.registry.rules.expr import ATTRIBUTES, parse, syntax_error

__all__ = ["OrderKey", "Rule"]

_KEYS = ("name", "description", "given", "when", "environment", "alias", "select")


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: str
    descending: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A selection rule; ``environment`` and/or ``alias`` say where the winner goes when applied."""

    name: str
    given: str = ""
    when: str = ""
    environment: str | None = None
    alias: str | None = None
    select: tuple[str, ...] = ("newest",)
    description: str = ""
    given_ast: Any = field(init=False, default=None, compare=False, repr=False)
    when_ast: Any = field(init=False, default=None, compare=False, repr=False)
    order: tuple[OrderKey, ...] = field(init=False, default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        check_name(self.name, "name")
        if self.environment is not None:
            check_name(self.environment, "environment")
        if not isinstance(self.select, str | list | tuple) or not all(isinstance(k, str) for k in self.select):
            raise InvalidInputError(field="select", value=self.select,
                                    expected="an ordering such as 'metrics.mae asc, newest', or a list of them")
        select = (self.select,) if isinstance(self.select, str) else tuple(self.select or ("newest",))
        object.__setattr__(self, "select", select)
        object.__setattr__(self, "given_ast", parse(self.given, "given"))
        object.__setattr__(self, "when_ast", parse(self.when, "when"))
        object.__setattr__(self, "order", tuple(k for item in select for k in _order_keys(str(item))))
        if self.alias is not None:
            from mloop.registry._models import check_alias

            check_alias(self.alias)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        """A rule from a mapping with the keys name, given, when, environment, alias, select, description."""
        if not isinstance(data, dict):
            raise InvalidInputError(field="rule", value=data, expected=f"a mapping with keys {list(_KEYS)}")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise InvalidInputError(field=unknown[0], value=data[unknown[0]], expected=f"one of the keys {list(_KEYS)}")
        if "name" not in data:
            raise InvalidInputError(field="name", value=None, expected="a rule name")
        values = {k: v for k, v in data.items() if v is not None}
        for key in ("given", "when", "description"):
            if key in values and not isinstance(values[key], str):
                raise InvalidInputError(field=key, value=values[key], expected="a string")
        return cls(**values)

    @classmethod
    def from_yaml(cls, text: str) -> Rule:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"The rule is not valid YAML: {exc}", field="rule") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for key in ("description", "given", "when", "environment", "alias"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out["select"] = list(self.select)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _order_keys(text: str) -> list[OrderKey]:
    keys = []
    for part in (p.strip() for p in text.split(",")):
        words = part.split()
        if words in (["newest"], ["latest"]):
            keys.append(OrderKey("created", True))
            continue
        if words == ["oldest"]:
            keys.append(OrderKey("created", False))
            continue
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise syntax_error(text, max(text.find(part), 0), f"cannot read {part!r} as an ordering", "select")
        name = words[0]
        if not (name.startswith(("metrics.", "tags.")) or name in ATTRIBUTES):
            raise syntax_error(text, max(text.find(name), 0), f"unknown field {name!r}; order by metrics.<key>, "
                                                              "tags.<key>, version, created, newest or oldest",
                               "select")
        keys.append(OrderKey(name, len(words) == 2 and words[1].lower() == "desc"))
    return keys
