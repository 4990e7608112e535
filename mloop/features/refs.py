"""Feature references: ``"view:feature"``, ``"view"`` (every feature), ``"view@2:feature"`` (pinned version).

>>> parse_ref("zone_stats@2:avg_fare")
('zone_stats', 2, 'avg_fare')
>>> parse_ref("zone_stats")
('zone_stats', None, None)
"""

from __future__ import annotations

import re

from mloop.errors import InvalidInputError

__all__ = ["parse_ref"]

_REF = re.compile(r"^([A-Za-z0-9_\-]+)(?:@(\d+))?(?::([^:]+))?$")


def parse_ref(ref: object) -> tuple[str, int | None, str | None]:
    """(view, version or None, feature or None) of a reference."""
    match = _REF.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise InvalidInputError(field="features", value=ref,
                                expected="a feature reference like 'view:feature', 'view' or 'view@2:feature'")
    view, version, feature = match.groups()
    return view, int(version) if version else None, feature
