"""Automation rules: GIVEN (which model), a trigger, WHEN (a condition over the trigger's payload), ACTIONS
(ordered), versioned in the metadata database and pausable.

    rules:
      - name: retrain-on-drift
        given: {model: eta, tags: {team: maps}}
        trigger: {kind: drift, monitor: eta-live}
        when: drift.share > 0.3
        actions:
          - run_flow: {file: flows/train.py, parameters: {days: 30}}
          - evaluate: {holdout: data/holdout.parquet, target: y, metric: mae, margin: 0.05}
          - promote: {alias: champion}
          - notify: {message: eta retrained}

>>> rule = Rule.from_dict({"name": "r", "given": {"model": "eta"}, "trigger": {"kind": "manual"},
...                        "actions": [{"promote": {"alias": "champion"}}]})
>>> [a.kind for a in rule.actions]
['promote']
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mloop._util.conditions import Condition, parse_when
from mloop._util.names import check_name
from mloop.automation.triggers import check_trigger
from mloop.errors import InvalidInputError

__all__ = ["ACTION_KINDS", "Action", "Rule", "load_rules"]

ACTION_KINDS = ("run_flow", "evaluate", "shadow", "canary", "promote", "rollback", "notify")
MAX_ACTIONS = 20
MAX_RULES_FILE = 1_000_000


@dataclass(frozen=True)
class Action:
    kind: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    name: str
    model: str
    trigger: dict[str, Any]
    actions: tuple[Action, ...]
    when: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    paused: bool = False
    environment: str | None = None  # the rule applies only while the model is deployed there

    @property
    def condition(self) -> Condition:
        return parse_when(self.when)

    @classmethod
    def from_dict(cls, data: Any) -> Rule:
        """A rule from its YAML/JSON form; every mistake names the rule and the field."""
        if not isinstance(data, dict):
            raise InvalidInputError(field="rules[]", value=data, expected="a mapping with name, given, trigger, "
                                    "actions")
        name = check_name(data.get("name"), "name")
        unknown = set(data) - {"name", "given", "trigger", "when", "actions", "paused"}
        if unknown:
            raise InvalidInputError(field=f"{name}.{sorted(unknown)[0]}", value=sorted(unknown)[0],
                                    expected="one of name, given, trigger, when, actions, paused")
        given = data.get("given")
        if not isinstance(given, dict) or not isinstance(given.get("model"), str):
            raise InvalidInputError(field=f"{name}.given", value=given, expected="a mapping with model: <name>")
        extra = set(given) - {"model", "tags", "environment"}
        if extra:
            raise InvalidInputError(field=f"{name}.given.{sorted(extra)[0]}", value=sorted(extra)[0],
                                    expected="model, tags or environment")
        tags = given.get("tags") or {}
        if not isinstance(tags, dict):
            raise InvalidInputError(field=f"{name}.given.tags", value=tags, expected="a mapping of tag: value")
        when = data.get("when") or ""
        parse_when(when)  # a syntax error is reported at apply, not at the first firing
        paused = data.get("paused", False)
        if not isinstance(paused, bool):
            raise InvalidInputError(field=f"{name}.paused", value=paused, expected="true or false")
        return cls(name=name, model=check_name(given["model"], f"{name}.given.model"),
                   trigger=check_trigger(data.get("trigger"), name), actions=_actions(data.get("actions"), name),
                   when=str(when), tags={str(k): str(v) for k, v in tags.items()}, paused=paused,
                   environment=None if given.get("environment") is None else check_name(
                       given["environment"], f"{name}.given.environment"))

    def to_dict(self) -> dict[str, Any]:
        given = {"model": self.model, "tags": self.tags, **({"environment": self.environment}
                                                              if self.environment else {})}
        return {"name": self.name, "given": given, "trigger": self.trigger,
                "when": self.when, "actions": [{a.kind: a.spec} for a in self.actions], "paused": self.paused}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _actions(raw: Any, rule: str) -> tuple[Action, ...]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_ACTIONS:
        raise InvalidInputError(field=f"{rule}.actions", value=raw,
                                expected=f"a list of 1 to {MAX_ACTIONS} actions such as '- promote: {{alias: x}}'")
    found = []
    for i, item in enumerate(raw):
        where = f"{rule}.actions[{i}]"
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise InvalidInputError(field=where, value=item, expected="one action: a mapping {kind: {options}}")
        kind, spec = next(iter(item.items()))
        if kind not in ACTION_KINDS:
            raise InvalidInputError(field=where, value=kind, expected=f"one of {list(ACTION_KINDS)}")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise InvalidInputError(field=f"{where}.{kind}", value=spec, expected="a mapping of options")
        from mloop.automation.actions import check_action

        found.append(Action(kind, check_action(kind, spec, f"{where}.{kind}")))
    return tuple(found)


def load_rules(source: str | Path | dict[str, Any] | list[Any]) -> list[Rule]:
    """Rules from a YAML file (``rules: [...]`` or a single rule), a YAML string, or parsed data."""
    data: Any = source
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and
                                    source.endswith((".yaml", ".yml"))):
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(field="rules", value=str(path), expected="a YAML file of automation rules")
        if path.stat().st_size > MAX_RULES_FILE:
            raise InvalidInputError(field="rules", value=str(path), expected=f"at most {MAX_RULES_FILE} bytes")
        source = path.read_text()
    if isinstance(source, str):
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"rules: not valid YAML: {exc}", field="rules") from None
    if isinstance(data, dict) and "rules" in data:
        data = data["rules"]
    items = data if isinstance(data, list) else [data]
    rules = [Rule.from_dict(item) for item in items]
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise InvalidInputError(field="rules", value=names, expected="each rule name once")
    return rules


def rule_from_json(text: str) -> Rule:
    return Rule.from_dict(json.loads(text))


