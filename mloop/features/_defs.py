"""The definitions a feature store knows in this process (from its repository or ``add``), for both transports."""

from __future__ import annotations

from collections.abc import Sequence

from mloop.errors import InvalidInputError
from mloop.features.definitions import Definition

__all__ = ["DefinitionSet"]


class DefinitionSet:
    """In-process definitions by (kind, name): what ``plan`` and ``apply`` use when given none.

    >>> from mloop.features import Entity
    >>> known = DefinitionSet()
    >>> known.add([Entity("zone", join_keys=["zone_id"])])
    >>> [d.name for d in known.definitions]
    ['zone']
    """

    def __init__(self) -> None:
        self._local: dict[tuple[str, str], Definition] = {}

    def add(self, definitions: Sequence[Definition]) -> None:
        """Make in-process definitions known (needed for DataFrame sources and on-demand functions)."""
        for d in definitions:
            self._local[(d.kind, d.name)] = d

    @property
    def definitions(self) -> list[Definition]:
        return list(self._local.values())

    def _defs(self, definitions: Sequence[Definition] | None) -> list[Definition]:
        defs = list(definitions) if definitions is not None else self.definitions
        bad = [d for d in defs if not isinstance(d, Definition)]
        if bad:
            raise InvalidInputError(field="definitions", value=type(bad[0]).__name__,
                                    expected="Entity, FeatureView, OnDemandFeatureView or FeatureService objects")
        return defs
