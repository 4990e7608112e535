"""Rules name a stored analysis as analysis.<key>: numbers only, and a damaged summary tag is just missing."""

from __future__ import annotations

import math

import pytest

from mloop.errors import InvalidInputError
from mloop.registry.rules import Rule
from mloop.registry.rules.evaluate import _analysis_columns


def test_analysis_fields_parse_and_compare_with_numbers_only() -> None:
    rule = Rule(name="fair", when="analysis.equalized_odds_difference < 0.1 and analysis.worst_slice_gap <= 0.05")
    assert rule.when_ast is not None
    with pytest.raises(InvalidInputError, match="is a number"):
        Rule(name="fair", when="analysis.equalized_odds_difference < 'low'")
    with pytest.raises(InvalidInputError, match="analysis.<key>"):
        Rule(name="fair", when="analysys.equalized_odds_difference < 0.1")


def test_a_damaged_summary_tag_leaves_the_version_without_numbers() -> None:
    columns = _analysis_columns(['{"worst_slice_gap": 0.02, "note": "text"}', None, "not json", "[1, 2]"])
    assert list(columns) == ["analysis.worst_slice_gap"]
    values = columns["analysis.worst_slice_gap"]
    assert values[0] == 0.02 and all(math.isnan(v) for v in values[1:])
