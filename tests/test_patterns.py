"""The regex in the OpenAPI document and the check behind the API are one: same strings in, same out."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop._util.names import (
    KEY_PATTERN,
    MAX_KEY,
    MAX_NAME,
    NAME_PATTERN,
    PLAIN_PATH_PATTERN,
    check_key,
    check_name,
    check_relative_path,
)
from mloop.errors import InvalidInputError
from mloop.registry._models import check_alias
from mloop.registry.lineage import DIGEST_PATTERN
from mloop.registry.uri import ALIAS_PATTERN, RUNS_URI_PATTERN, parse_uri

# the characters the rules are about, and some they refuse (a newline, a NUL, a letter outside ASCII)
_TRICKY = st.text(alphabet="ab.:/ -_09\n\x00é", max_size=12)


def _accepts(check: Callable[[Any], Any], value: str) -> bool:
    try:
        check(value)
    except InvalidInputError:
        return False
    return True


@pytest.mark.parametrize(("pattern", "check", "max_length"), [
    (NAME_PATTERN, check_name, MAX_NAME), (KEY_PATTERN, check_key, MAX_KEY), (ALIAS_PATTERN, check_alias, 256)])
@settings(max_examples=2000, deadline=None)
@given(value=_TRICKY)
def test_the_documented_pattern_accepts_what_the_check_accepts(pattern: str, check: Callable[[Any], Any],
                                                               max_length: int, value: str) -> None:
    documented = re.fullmatch(pattern, value) is not None and len(value) <= max_length
    assert documented == _accepts(check, value), value


@pytest.mark.parametrize(("check", "value"), [
    (check_name, "a\n"), (check_key, "loss\n"), (check_name, " "), (check_name, ""), (check_key, "a/../b"),
    (check_key, "/a"), (check_name, "é")])
def test_names_and_keys_the_document_refuses_are_refused(check: Callable[[Any], Any], value: str) -> None:
    """A trailing newline passed the old ``$`` of Python's re (it matches before a final newline)."""
    assert not _accepts(check, value)


def test_an_alias_is_ascii_as_in_a_models_uri() -> None:
    """str.isalnum took 'café', an alias that no models:/name@alias URI could ever resolve."""
    assert not _accepts(check_alias, "café")
    assert _accepts(check_alias, "champion-2")


@given(value=st.text(alphabet="0123456789abcdefg", max_size=70))
def test_a_digest_is_checked_by_its_documented_pattern(value: str) -> None:
    from mloop.registry.lineage import versions_for_digest

    if re.fullmatch(DIGEST_PATTERN, value) is None:
        with pytest.raises(InvalidInputError):
            versions_for_digest(None, value)  # type: ignore[arg-type]  # refused before the client is used


@pytest.mark.parametrize("uri", ["runs:/" + "a" * 32 + "/model\x1c", "runs:/" + "a" * 32 + "/m\u3000",
                                 "runs:/" + "a" * 32 + "/ok"])
def test_a_runs_uri_is_refused_by_the_documented_pattern_exactly_when_parse_uri_refuses_it(uri: str) -> None:
    assert (re.fullmatch(RUNS_URI_PATTERN, uri) is not None) == _accepts(parse_uri, uri)


@settings(max_examples=2000, deadline=None)
@given(value=st.text(alphabet="ab./\\:%\n\x00 é", max_size=10))
def test_every_path_the_document_promises_is_taken(value: str) -> None:
    """The artifact path pattern is a subset: check_relative_path also takes '%20' forms that decode plainly."""
    if re.fullmatch(PLAIN_PATH_PATTERN, value) is not None:
        assert _accepts(check_relative_path, value), value
