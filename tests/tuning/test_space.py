"""Search spaces: the documented forms, from Python and YAML, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mloop.errors import InvalidInputError
from mloop.tuning.space import Dimension, parse_space


def test_every_documented_form_parses() -> None:
    space = parse_space({"lr": ("log", 1e-4, 1e-1), "depth": ("int", 2, 10), "width": ("int", 8, 64, 8),
                         "leaves": ("logint", 1, 1024), "frac": ("float", 0.1, 1.0, 0.1), "kind": ["a", "b", None],
                         "seed": 7, "optimizer": "adam"})
    assert space["lr"] == Dimension("lr", "log", 1e-4, 1e-1)
    assert space["width"].step == 8 and space["leaves"].kind == "logint"
    assert space["kind"].choices == ("a", "b", None)
    assert space["seed"] == Dimension("seed", "fixed", choices=(7,))


def test_a_yaml_file_spells_ranges_as_mappings(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("lr: {type: log, low: 1e-4, high: 0.1}\ndepth: {type: int, low: 2, high: 10, step: 2}\n"
                    "kind: [gbm, linear]\nbooster: {choices: [gbtree, dart]}\nseed: 3\n")
    space = parse_space(path)
    assert space["lr"] == Dimension("lr", "log", 1e-4, 0.1)  # YAML reads 1e-4 as text: taken as the number
    assert space["depth"] == Dimension("depth", "int", 2, 10, 2)
    assert space["kind"].choices == ("gbm", "linear") and space["booster"].choices == ("gbtree", "dart")


@pytest.mark.parametrize(("space", "field", "says"), [
    ({"lr": ("log", 0, 1)}, "space.lr.low", "> 0"),
    ({"lr": ("float", 1, 0)}, "space.lr.high", ">= low"),
    ({"lr": ("uniform", 0, 1)}, "space.lr", "'float'|'log'"),
    ({"lr": ("float", 0, float("nan"))}, "space.lr.high", "finite"),
    ({"n": ("int", 1.5, 3)}, "space.n.low", "whole number"),
    ({"n": ("int", 1, 9, 0)}, "space.n.step", "step > 0"),
    ({"n": ("log", 1, 9, 2)}, "space.n.step", "no step on a log scale"),
    ({"k": []}, "space.k", "1 to"),
    ({"k": ["a", "a"]}, "space.k", "without repeats"),
    ({"k": [[1, 2]]}, "space.k", "str, int"),
    ({"k": {"type": "int", "low": 1}}, "space.k.high", "the key 'high'"),
    ({"k": {"type": "int", "low": 1, "high": 2, "max": 3}}, "space.k", "only the keys"),
    ({"k": object()}, "space.k", "a list of choices"),
    ({3: ["a"]}, "space", "non-empty strings"),
    (["lr"], "space", "a dict"),
])
def test_a_bad_space_names_the_key_the_value_and_what_was_expected(space: Any, field: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match="expected") as info:
        parse_space(space)
    assert info.value.field == field and says in str(info.value)


def test_a_bad_yaml_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("lr: [unclosed\n")
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        parse_space(tmp_path / "bad.yaml")
    with pytest.raises(InvalidInputError, match="an existing YAML file"):
        parse_space(tmp_path / "missing.yaml")
